"""Feast operations for a project: apply, training sets, materialisation, online reads."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from gristmill.errors import GristmillError, StageNotReady
from gristmill.features.naming import REQUEST_TIME, TIMESTAMP, helper_column, service_name, view_name
from gristmill.features.tables import Manifest, manifest_path
from gristmill.workspace import Workspace


class FeastError(GristmillError):
    """Feast refused an operation; the message carries Feast's own last line."""


def load_manifest(ws: Workspace, project: str) -> Manifest:
    path = manifest_path(ws, project)
    if not path.is_file():
        raise StageNotReady("this step", f"the feature tables of {project!r}",
                            f"gristmill features apply {project}")
    return Manifest.load(path)


def feast_apply(ws: Workspace) -> str:
    """Run the real ``feast apply`` in the feature repo; return its output."""
    feast = shutil.which("feast", path=str(Path(sys.executable).parent)) or shutil.which("feast")
    if feast is None:
        raise FeastError("the `feast` command is not installed in this environment")
    env = {**os.environ, "FEAST_USAGE": "False"}
    proc = subprocess.run([feast, "apply"], cwd=ws.feature_repo, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        raise FeastError(f"feast apply failed in {ws.feature_repo}: {lines[-1] if lines else 'no output'}")
    return proc.stdout


def _release_offline_store() -> None:
    """Close the DuckDB connection Feast's offline store leaves behind, before the interpreter ends.

    Feast's DuckDB offline store reads Parquet through ``ibis.read_parquet``, which opens ibis's
    process-wide default backend (``ibis.options.default_backend``, one DuckDB connection) and keeps
    it in that global. Alive at shutdown, it made DuckDB 2.0's nanobind module print ~40 lines of
    "nanobind: leaked instances ... reference counting" after every command that built a training
    set or materialized. Run at exit, not after each call: a server's concurrent requests share it.
    """
    ibis = sys.modules.get("ibis")
    backend = getattr(getattr(ibis, "options", None), "default_backend", None)
    if backend is None:
        return
    try:
        backend.disconnect()
    except Exception:  # already closed, or a backend without a connection: nothing to release
        pass
    ibis.options.default_backend = None
    import gc

    gc.collect()


_release_registered = False


def open_store(ws: Workspace):
    """A FeatureStore over the workspace's feature repo."""
    import atexit

    from feast import FeatureStore

    from gristmill.features.repo import write_repo

    global _release_registered
    if not _release_registered:  # the last-registered atexit handler runs first: before feast's own
        atexit.register(_release_offline_store)
        _release_registered = True

    write_repo(ws.ensure())  # feature_store.yaml in step with the workspace configuration
    return FeatureStore(repo_path=str(ws.feature_repo))


def _service_version(store, project: str) -> str:
    service = store.get_feature_service(service_name(project))
    parts = []
    for proj in service.feature_view_projections:
        parts.append(proj.name + ":" + ",".join(sorted(f"{f.name}:{f.dtype}" for f in proj.features)))
    return hashlib.sha256("|".join(sorted(parts)).encode()).hexdigest()[:10]


def build_training_set(ws: Workspace, project: str) -> tuple[str, Path]:
    """Point-in-time join of the label table with the project's feature service.

    Returns the training-set id (``<project>-<service version>-<UTC time>``) and its Parquet path.
    """
    import pandas as pd

    manifest = load_manifest(ws, project)
    store = open_store(ws)
    labels = pd.read_parquet(manifest.labels_path)
    service = store.get_feature_service(service_name(project))
    frame = historical(store, labels, service)
    version = _service_version(store, project)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    dataset_id = f"{project}-{version}-{stamp}"
    out = ws.datasets(project)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{dataset_id}.parquet"
    frame = frame.sort_values([TIMESTAMP, manifest.key]).reset_index(drop=True)
    frame.to_parquet(path.with_suffix(".tmp"), index=False, coerce_timestamps="us",
                     allow_truncated_timestamps=True)
    path.with_suffix(".tmp").replace(path)
    meta = {"id": dataset_id, "rows": len(frame), "feature_service": service_name(project),
            "service_version": version, "key": manifest.key, "target": manifest.target,
            "features": [c for c in frame.columns if c not in (manifest.key, TIMESTAMP, manifest.target)],
            "labels_left_out": manifest.labels_left_out,
            "feature_types": {f.name: f.dtype for t in manifest.tables for f in t.features}}
    (out / f"{dataset_id}.json").write_text(json.dumps(meta, indent=2))
    return dataset_id, path


def historical(store, entity_df, service):
    """Point-in-time features of ``entity_df`` (key + ``event_timestamp``), request time included,
    without the helper columns models must not see.

    When every view of ``service`` reads a local Parquet source, Gristmill's own join runs
    (:mod:`gristmill.features.pit`: one DuckDB query of ASOF joins, Feast's semantics and column
    names); otherwise Feast's ``get_historical_features``. The log says which, and why.
    """
    import logging

    import pandas as pd

    from gristmill.features import pit

    entity_df = entity_df.copy()
    entity_df[TIMESTAMP] = pd.to_datetime(entity_df[TIMESTAMP], utc=True)
    entity_df[REQUEST_TIME] = (entity_df[TIMESTAMP] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    log = logging.getLogger("gristmill.features")
    plan = pit.plan(store, service)
    if isinstance(plan, str):
        log.info("%s: point-in-time join by Feast's get_historical_features (%s)", service.name, plan)
        job = store.get_historical_features(entity_df=entity_df, features=service)
    else:
        log.info("%s: point-in-time join by Gristmill (DuckDB ASOF JOIN of %d views)",
                 service.name, len(plan.views))
        job = pit.retrieve(plan, entity_df)
    frame = job.to_df()
    return frame.drop(columns=[c for c in frame.columns if helper_column(c)])


def latest_training_set(ws: Workspace, project: str) -> tuple[str, Path]:
    out = ws.datasets(project)
    found = sorted(out.glob("*.parquet")) if out.is_dir() else []
    if not found:
        raise StageNotReady("training", f"a training set of {project!r}",
                            f"gristmill features dataset {project}")
    return found[-1].stem, found[-1]


ONLINE_READ_CHUNK = 5_000  # entity keys per online-store read while checking what it holds
#: unchanged entities read back first to see whether the online store still holds them; any missing
#: one makes the check read them all (a wiped store is always seen, a partly lost one of 1% with
#: probability 1 - 0.99**2000)
ONLINE_SAMPLE = 2_000
#: for an online store other than Gristmill's (a hand-edited feature_store.yaml): above this share
#: of entities to write, Feast's own full materialize of the view is used, about twice as fast as
#: write_to_online_store (20,000 entities x 10 features into SQLite: 12 s against 27 s). Gristmill's
#: stores write any share in bulk (:mod:`gristmill.features.online_store`)
FULL_SHARE = 0.5


def materialize(ws: Workspace, project: str, end: datetime | None = None) -> dict:
    """Make the online store hold, for every entity, its offline-latest row up to ``end`` (default now).

    Feast's incremental materialize reads only rows stamped after the previous run's end, so a row
    ingested later with an older timestamp (late data, a correction) never reached the online store,
    and an emptied online store stayed empty. Here each run computes every view's latest row per
    entity from its feature table (DuckDB, over the whole history), and writes an entity when

    - its latest row differs from the one written last time (a digest of the row, kept in
      ``_features/_online/<view>.parquet``): new entities, late or corrected rows, windows that moved;
    - or the online store does not hold it (read back by key: a wiped or partly lost store).

    Unchanged entities the store holds are not written again, so a rerun costs one DuckDB pass and
    a keyed read of a sample (:data:`ONLINE_SAMPLE`; all of them once one is missing), not a full
    load. The rows go to the online store's bulk writer (Gristmill's SQLite and Redis stores,
    :mod:`gristmill.features.online_store`); another store gets Feast's own writers.
    """
    import time

    manifest = load_manifest(ws, project)
    store = open_store(ws)
    end = end or datetime.now(timezone.utc)
    started = time.monotonic()
    state_dir = ws.lake(project) / "_features" / "_online"
    state_dir.mkdir(parents=True, exist_ok=True)
    views, written, entities = [], {}, {}
    for table in manifest.tables:
        view = view_name(table.owner or project, table.table)
        views.append(view)
        entities[view], written[view] = _materialize_view(store, view, table, manifest.key, end,
                                                          state_dir / f"{view}.parquet")
    state = {"start": datetime(1970, 1, 1, tzinfo=timezone.utc).isoformat(), "end": end.isoformat(),
             "views": views, "entities": entities, "written": written,
             "seconds": round(time.monotonic() - started, 2)}
    (ws.lake(project) / "_features" / "_materialized.json").write_text(json.dumps(state))
    return state


def _state_usable(state_path: Path) -> bool:
    """Whether ``state_path`` holds digests of this code's kind (a 64-bit hash; an older md5 state
    is ignored: every entity is written once more)."""
    if not state_path.is_file():
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(state_path)
    return "__key" in schema.names and "__digest" in schema.names and schema.field("__digest").type == pa.uint64()


def _latest_rows(table, key: str, end: datetime, state_path: Path | None = None):
    """Each entity's latest row stamped at or before ``end`` (a later-written row breaks a tie) as an
    Arrow table (exact integers: no pandas float round trip), with ``__digest`` (a 64-bit hash of the
    row's time and values) and ``__same`` (whether the digest is the one ``state_path`` kept)."""
    import duckdb

    from gristmill.features.naming import CREATED
    from gristmill.sql import ident, literal

    names = [f.name for f in table.features]
    order = f"{TIMESTAMP} DESC" + (f", {CREATED} DESC" if table.created else "")
    cols = ", ".join(ident(c) for c in [key, TIMESTAMP, *([CREATED] if table.created else []), *names])
    digest = "hash(struct_pack(" + ", ".join(f"{ident(c)} := {ident(c)}" for c in [TIMESTAMP, *names]) + "))"
    latest = (f"SELECT {cols}, {digest} AS __digest FROM read_parquet({literal(table.path)}) "
              f"WHERE {TIMESTAMP} <= $end AND {ident(key)} IS NOT NULL "
              f"QUALIFY row_number() OVER (PARTITION BY {ident(key)} ORDER BY {order}) = 1")
    if state_path is not None and _state_usable(state_path):
        sql = (f"SELECT l.*, coalesce(l.__digest = s.__digest, false) AS __same FROM ({latest}) l "
               f"LEFT JOIN read_parquet({literal(str(state_path))}) s ON CAST(l.{ident(key)} AS VARCHAR) = s.__key")
    else:
        sql = f"SELECT *, false AS __same FROM ({latest})"
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(sql, params={"end": end}).to_arrow_table()
    finally:
        con.close()


def _as_pandas(rows):
    """An Arrow table of latest rows as the pandas frame Feast's ``write_to_online_store`` takes."""
    import pandas as pd

    from gristmill.features.naming import CREATED

    frame = rows.to_pandas()
    for col in (TIMESTAMP, CREATED):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def _held_online(store, view: str, key: str, ids) -> set:
    """The entity ids of ``ids`` the online store holds a row of ``view`` for."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    fv = store.get_feature_view(view)
    provider = store._get_provider()
    held = set()
    ids = list(ids)
    for i in range(0, len(ids), ONLINE_READ_CHUNK):
        chunk = ids[i:i + ONLINE_READ_CHUNK]
        keys = [EntityKey(join_keys=[key], entity_values=[Value(string_val=str(v))]) for v in chunk]
        for entity, (ts, _) in zip(chunk, provider.online_read(store.config, fv, keys)):
            if ts is not None:
                held.add(entity)
    return held


def _materialize_view(store, view: str, table, key: str, end: datetime, state_path: Path) -> tuple[int, int]:
    """Write the entities of ``view`` whose latest row changed or the store lacks; (entities, written)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from gristmill.features.naming import CREATED

    latest = _latest_rows(table, key, end, state_path)
    same = latest.column("__same").to_numpy(zero_copy_only=False).astype(bool)
    ids = pc.cast(latest.column(key), pa.string()).combine_chunks()
    unchanged = ids.filter(pa.array(same))
    missing: list = []
    if len(unchanged):
        pick = np.sort(np.random.default_rng(0).choice(len(unchanged), min(ONLINE_SAMPLE, len(unchanged)),
                                                       replace=False))
        sample = unchanged.take(pa.array(pick)).to_pylist()
        missing = sorted(set(sample) - _held_online(store, view, key, sample))
        if missing and len(sample) < len(unchanged):
            every = unchanged.to_pylist()
            missing = sorted(set(every) - _held_online(store, view, key, every))
    mask = ~same
    if missing:
        mask |= pc.is_in(ids, value_set=pa.array(missing, pa.string())).to_numpy(zero_copy_only=False)
    todo = latest.filter(pa.array(mask)).drop_columns(["__digest", "__same"])
    online, fv = store._get_provider().online_store, store.get_feature_view(view)
    if todo.num_rows and _bulk(online) and online.bulk_ready(store.config, fv):
        online.write_latest(store.config, fv, todo, key, CREATED if table.created else None)
    elif todo.num_rows > FULL_SHARE * latest.num_rows:
        store.materialize(start_date=datetime(1970, 1, 1, tzinfo=timezone.utc), end_date=end,
                          feature_views=[view])
    elif todo.num_rows:
        store.write_to_online_store(view, _as_pandas(todo))
    tmp = state_path.with_suffix(".tmp")
    pq.write_table(pa.table({"__key": ids, "__digest": latest.column("__digest")}), tmp)
    tmp.replace(state_path)
    return latest.num_rows, todo.num_rows


def _bulk(online) -> bool:
    """Whether ``online`` is one of Gristmill's bulk-writing stores (:mod:`.online_store`)."""
    from gristmill.features.online_store import BULK_STORES

    return isinstance(online, BULK_STORES)


def feature_views(ws: Workspace) -> list[dict]:
    """Every feature view with its owner project and the projects whose service uses it."""
    from gristmill.features.naming import PROJECT_TAG

    store = open_store(ws)
    users: dict[str, set[str]] = {}
    for service in store.list_feature_services():
        for projection in service.feature_view_projections:
            users.setdefault(projection.name, set()).add(service.tags.get(PROJECT_TAG, service.name))
    return [{"view": v.name, "project": v.tags.get(PROJECT_TAG, ""), "used_by": sorted(users.get(v.name, [])),
             "features": len(v.features)} for v in sorted(store.list_feature_views(), key=lambda v: v.name)]


def remove_definitions(ws: Workspace, project: str) -> list[str]:
    """Delete ``project``'s generated definitions and apply; returns the views that left."""
    from gristmill.features.naming import PROJECT_TAG
    from gristmill.features.repo import GENERATED_DIR

    folder = ws.feature_repo / GENERATED_DIR
    target = folder / f"{project}.py"
    if not target.is_file():
        raise GristmillError(f"project {project!r} has no generated feature definitions in {folder}")
    needle = f"from {GENERATED_DIR}.{project} import "
    dependents = sorted(p.stem for p in folder.glob("*.py") if p != target and needle in p.read_text())
    if dependents:
        raise GristmillError(f"project {project!r} owns feature views that {', '.join(dependents)} "
                             "reuse: remove them from those specs (or those projects) first")
    before = {r["view"] for r in feature_views(ws) if r["project"] == project}
    aside = target.with_name(target.name + ".removed")
    target.replace(aside)
    try:
        feast_apply(ws)
    except GristmillError:
        aside.replace(target)  # the registry is as it was: keep the definitions too
        raise
    aside.unlink()
    after = {v.name for v in open_store(ws).list_feature_views() if v.tags.get(PROJECT_TAG) == project}
    return sorted(before - after)
