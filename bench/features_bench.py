"""Feature-store figures (Feast 0.67) beside the peers, on the same files in the same run.

    .venv/bin/python bench/features_bench.py [--scale 1.0] [--parts train,materialize,online,gristmill]
        [--materialize-entities N] [--gristmill-entities N] [--stores sqlite,redis] [--calls 500] [--dir /tmp/gristmill-fbench] [--json]

It writes deterministic Parquet (numpy, seeded; timestamps in microseconds) and temporary Feast repos
under ``--dir`` built like Gristmill's (string entity key, ``<view>__<feature>`` names, TTL 0 = no
expiry, a FeatureService, DuckDB offline store, SQL registry on SQLite, entity key serialisation 3).
Each measurement runs in a fresh Python process, so peak memory (max RSS) is its own; ``base MB`` is
that process's RSS after its imports, before the measured step. Figures only: nothing is asserted.

1. training set: ``--scale`` x 1M label rows (entity, as-of, label) x 50 features (5 views x 10) over
   ``--scale`` x 10M events (2M per view, ~200k entities, spread over 2023). Feast
   ``get_historical_features(FeatureService).to_df()`` and Gristmill's point-in-time join
   (``gristmill.features.pit``: ``plan`` of the same FeatureService, ``retrieve(...).to_df()``, the
   path ``build_training_set`` takes) against the peer, a hand-written DuckDB ``ASOF LEFT JOIN`` of
   the same files (latest row with event_timestamp <= as-of, no TTL); all three include reading the
   labels Parquet. Feast's and Gristmill's results are each compared with the hand-written join's
   on the rows of every 50th entity.
2. materialize: ``--scale`` x 1M entities x 50 features (one row per entity per view), first run
   ``materialize(start, end)``, into SQLite and Redis (db 12, flushed before and after), unbatched
   and with ``materialization: {online_write_batch_size: 50000}`` (bounded memory).
   ``--materialize-entities`` caps the size when the full one does not fit the time at hand (Feast
   at 1M takes about 30 minutes a store).
2b. gristmill: Gristmill's own materialize (``features.store._materialize_view``: latest rows by
   DuckDB, the digest state, the bulk writer of ``gristmill.features.online_store``) of the same
   views at ``--gristmill-entities`` (default the full size) into its SQLite and Redis stores, then a
   rerun with nothing changed, a check of every 997th entity's 50 values against the Parquet, and
   lookups as in 3 on those stores.
3. online: p50/p99 of ``get_online_features(service).to_dict()`` for 1 and 100 entities (50 features),
   ``--calls`` calls each after 50 warm-up calls, on the stores the bounded materialize filled.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

KEY, TS = "customer_id", "event_timestamp"
VIEWS, FEATURES = 5, 10
START_US = 1672531200 * 10**6  # 2023-01-01 UTC
YEAR_US = 365 * 86400 * 10**6
BATCH = 50000
REDIS = ("127.0.0.1", 6379, 12)  # a db of its own (13: team-mode tests): flushed before and after each store
SAMPLE_EVERY = 50  # compare the rows of entities whose number % 50 == 0


# ---------------------------------------------------------------- data
def keys(ids):
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join_element_wise("c", pc.utf8_lpad(pa.array(ids).cast(pa.string()), 7, "0"), "")


def write(table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path, coerce_timestamps="us", allow_truncated_timestamps=True)


def make_views(folder: Path, prefix: str, rows: int, entities: int, seed: int, once: bool) -> list[str]:
    """VIEWS Parquet files of ``rows`` events each; ``once``: one row per entity (rows == entities).
    Event times rise strictly with the row number, so no entity has two rows at one instant."""
    import numpy as np
    import pyarrow as pa

    paths = [folder / f"{prefix}{j}_{rows}.parquet" for j in range(VIEWS)]
    if all(p.exists() for p in paths):
        return [str(p) for p in paths]
    rng = np.random.default_rng(seed)
    for j, path in enumerate(paths):
        ids = rng.permutation(entities) if once else rng.integers(0, entities, rows)
        cols = {KEY: keys(ids),
                TS: pa.array(START_US + np.arange(rows, dtype=np.int64) * (YEAR_US // rows), pa.timestamp("us", "UTC"))}
        cols[f"{prefix}{j}__f0"] = rng.integers(0, 1000, rows)  # one Int64 feature per view
        for k in range(1, FEATURES):
            cols[f"{prefix}{j}__f{k}"] = rng.random(rows)
        write(pa.table(cols), path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    return [str(p) for p in paths]


def make_labels(path: Path, rows: int, entities: int, seed: int) -> str:
    import numpy as np
    import pyarrow as pa

    if not path.exists():
        rng = np.random.default_rng(seed)
        write(pa.table({KEY: keys(rng.integers(0, entities, rows)),
                        TS: pa.array(START_US + rng.integers(0, YEAR_US, rows), pa.timestamp("us", "UTC")),
                        "label": rng.integers(0, 2, rows)}), path)
    return str(path)


# ---------------------------------------------------------------- Feast repos
GM_TYPES = {"sqlite": "gristmill.features.online_store.GristmillSqliteOnlineStore",
            "redis": "gristmill.features.online_store.GristmillRedisOnlineStore"}


def store_yaml(repo: Path, online: str, batch: int | None, gristmill: bool = False) -> str:
    if online == "redis":
        kind = GM_TYPES["redis"] if gristmill else "redis"
        online_cfg = f'  type: {kind}\n  connection_string: "{REDIS[0]}:{REDIS[1]},db={REDIS[2]}"'
    else:
        online_cfg = f"  type: {GM_TYPES['sqlite'] if gristmill else 'sqlite'}\n  path: {repo / 'online.db'}"
    mat = f"materialization:\n  online_write_batch_size: {batch}\n" if batch else ""
    return (f"project: fbench_{repo.name.replace('-', '_')}\nprovider: local\n"
            f"registry:\n  registry_type: sql\n  path: sqlite:///{repo / 'registry.db'}\n  cache_ttl_seconds: 60\n"
            f"offline_store:\n  type: duckdb\nonline_store:\n{online_cfg}\n{mat}"
            "entity_key_serialization_version: 3\n")


def feast_objects(prefix: str, files: list[str], online: bool) -> list:
    """The entity, VIEWS feature views of FEATURES features and a service, as Gristmill generates them."""
    from datetime import timedelta

    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    entity = Entity(name="customer", join_keys=[KEY], value_type=ValueType.STRING)
    views = [FeatureView(
        name=f"{prefix}{j}", entities=[entity], ttl=timedelta(0), online=online,
        schema=[Field(name=f"{prefix}{j}__f{k}", dtype=Int64 if k == 0 else Float64) for k in range(FEATURES)],
        source=FileSource(name=f"{prefix}{j}__source", path=path, timestamp_field=TS))
        for j, path in enumerate(files)]
    return [entity, *views, FeatureService(name=f"{prefix}_service", features=views)]


# ---------------------------------------------------------------- measurements (run in workers)
def _rss_mb() -> int:
    """Peak RSS of this process image. Not ru_maxrss: Linux carries that over fork/exec from the parent."""
    with open("/proc/self/status") as status:
        return round(int(next(ln.split()[1] for ln in status if ln.startswith("VmHWM"))) / 1024)


def w_apply(repo: str, prefix: str, files: list[str], online: bool) -> dict:
    from feast import FeatureStore

    FeatureStore(repo_path=repo).apply(feast_objects(prefix, files, online))
    return {}


def _sample(df, out: str) -> None:
    numbers = df[KEY].str.slice(1).astype(int)
    df[numbers % SAMPLE_EVERY == 0].to_parquet(out)


def w_feast_train(repo: str, labels: str, out: str) -> dict:
    import pandas as pd
    from feast import FeatureStore

    store = FeatureStore(repo_path=repo)
    service = store.get_feature_service("t_service")
    base, t = _rss_mb(), time.monotonic()
    entity_df = pd.read_parquet(labels)  # must be pandas
    df = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    secs = time.monotonic() - t
    _sample(df, out)
    return {"seconds": secs, "rss_mb": _rss_mb(), "base_mb": base, "rows": len(df), "cols": df.shape[1]}


def w_gristmill_train(repo: str, labels: str, out: str) -> dict:
    """Gristmill's join of the service (what ``features.store.historical`` runs for Parquet views)."""
    import pandas as pd
    from feast import FeatureStore

    from gristmill.features import pit

    store = FeatureStore(repo_path=repo)
    service = store.get_feature_service("t_service")
    base, t = _rss_mb(), time.monotonic()
    entity_df = pd.read_parquet(labels)  # the same pandas entity_df as Feast's
    plan = pit.plan(store, service)
    if isinstance(plan, str):
        raise SystemExit(f"Gristmill's join does not apply: {plan}")
    df = pit.retrieve(plan, entity_df).to_df()
    secs = time.monotonic() - t
    _sample(df, out)
    return {"seconds": secs, "rss_mb": _rss_mb(), "base_mb": base, "rows": len(df), "cols": df.shape[1]}


def asof_sql(labels: str, files: list[str]) -> str:
    cols, joins = [], []
    for j, path in enumerate(files):
        cols += [f"v{j}.t{j}__f{k}" for k in range(FEATURES)]
        joins.append(f"ASOF LEFT JOIN read_parquet('{path}') v{j} "
                     f"ON l.{KEY} = v{j}.{KEY} AND l.{TS} >= v{j}.{TS}")
    return (f"SELECT l.{KEY}, l.{TS}, l.label, {', '.join(cols)}\nFROM read_parquet('{labels}') l\n"
            + "\n".join(joins))


def w_duckdb_train(labels: str, files: list[str], out: str) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    base, t = _rss_mb(), time.monotonic()
    df = con.execute(asof_sql(labels, files)).df()
    secs = time.monotonic() - t
    _sample(df, out)
    return {"seconds": secs, "rss_mb": _rss_mb(), "base_mb": base, "rows": len(df), "cols": df.shape[1]}


def w_materialize(repo: str) -> dict:
    from datetime import datetime, timezone

    from feast import FeatureStore

    store = FeatureStore(repo_path=repo)
    views = [v.name for v in store.list_feature_views()]
    base, t = _rss_mb(), time.monotonic()
    store.materialize(datetime(2022, 12, 31, tzinfo=timezone.utc), datetime(2024, 1, 2, tzinfo=timezone.utc),
                      feature_views=views)
    return {"seconds": time.monotonic() - t, "rss_mb": _rss_mb(), "base_mb": base}


def w_online(repo: str, entities: int, calls: int) -> dict:
    import numpy as np
    from feast import FeatureStore

    store = FeatureStore(repo_path=repo)
    service = store.get_feature_service("m_service")
    rng = np.random.default_rng(7)
    result = {}
    for size in (1, 100):
        batches = [[{KEY: f"c{i:07d}"} for i in rng.choice(entities, size, replace=False)]
                   for _ in range(calls + 50)]
        for rows in batches[:50]:  # warm-up: registry cache, connections
            store.get_online_features(features=service, entity_rows=rows).to_dict()
        times = []
        for rows in batches[50:]:
            t = time.perf_counter()
            out = store.get_online_features(features=service, entity_rows=rows).to_dict()
            times.append(time.perf_counter() - t)
        missing = sum(v is None for v in out["m0__f1"])
        ms = np.array(times) * 1000
        result[size] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                        "mean_ms": float(ms.mean()), "features": len(out) - 1, "missing_last": missing}
    return result


def w_gm_materialize(repo: str, files: list[str], entities: int, calls: int, end: str) -> dict:
    """Gristmill's materialize of every view (its own code: latest rows by DuckDB, the digest
    state, the bulk writer of its online store), then a rerun with nothing changed, a sample check
    against the offline latest and lookups through ``get_online_features`` (the bento's call)."""
    from datetime import datetime

    import numpy as np
    import pyarrow.parquet as pq
    from feast import FeatureStore

    from gristmill.features.store import _materialize_view
    from gristmill.features.tables import FeatureColumn, FeatureTable

    store = FeatureStore(repo_path=repo)
    tables = [FeatureTable(f"m{j}", path, None, [FeatureColumn(f"m{j}__f{k}", "Int64" if k == 0 else "Float64")
                                                 for k in range(FEATURES)]) for j, path in enumerate(files)]
    state = Path(repo) / "state"
    state.mkdir(exist_ok=True)
    stop = datetime.fromisoformat(end)
    base, t = _rss_mb(), time.monotonic()
    written = [_materialize_view(store, t_.table, t_, KEY, stop, state / f"{t_.table}.parquet")[1] for t_ in tables]
    secs = time.monotonic() - t
    rss = _rss_mb()
    t = time.monotonic()
    rewritten = [_materialize_view(store, t_.table, t_, KEY, stop, state / f"{t_.table}.parquet")[1] for t_ in tables]
    rerun = time.monotonic() - t
    # sample check: every 997th entity, all 50 features, against the Parquet (one row per entity)
    sample = [f"c{i:07d}" for i in range(0, entities, 997)]
    service = store.get_feature_service("m_service")
    online = store.get_online_features(features=service, entity_rows=[{KEY: k} for k in sample]).to_dict()
    mismatches = 0
    for t_ in tables:
        offline = pq.read_table(t_.path).to_pandas().set_index(KEY).loc[sample]
        for f in t_.features:
            a, b = np.array(online[f.name], dtype=float), offline[f.name].to_numpy(dtype=float)
            mismatches += int((~((a == b) | (np.isnan(a) & np.isnan(b)))).sum())
    rng = np.random.default_rng(7)
    lookups = {}
    for size in (1, 100):
        batches = [[{KEY: f"c{i:07d}"} for i in rng.choice(entities, size, replace=False)] for _ in range(calls + 50)]
        for rows in batches[:50]:
            store.get_online_features(features=service, entity_rows=rows).to_dict()
        times = []
        for rows in batches[50:]:
            t = time.perf_counter()
            store.get_online_features(features=service, entity_rows=rows).to_dict()
            times.append(time.perf_counter() - t)
        ms = np.array(times) * 1000
        lookups[size] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                         "mean_ms": float(ms.mean())}
    return {"seconds": secs, "rss_mb": rss, "base_mb": base, "written": sum(written),
            "rerun_seconds": rerun, "rerun_written": sum(rewritten), "sample_entities": len(sample),
            "sample_values": len(sample) * VIEWS * FEATURES, "mismatches": mismatches, "online": lookups}


WORKERS = {"gm_materialize": w_gm_materialize, "apply": w_apply, "feast_train": w_feast_train, "duckdb_train": w_duckdb_train,
           "gristmill_train": w_gristmill_train,
           "materialize": w_materialize, "online": w_online}


def run(name: str, timeout: float, **kwargs) -> dict:
    """Run one worker in a fresh interpreter; its last stdout line is JSON."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "FEAST_USAGE": "False"}
    try:
        out = subprocess.run([sys.executable, __file__, "_worker", name, json.dumps(kwargs)], env=env,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)[-600:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- orchestration
def machine() -> str:
    import duckdb
    import pyarrow
    from importlib.metadata import version

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    ram = int(next(ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))) / 1024**2
    return (f"machine: {os.cpu_count()} cores, {ram:.0f} GB RAM, {cpu}, Python {platform.python_version()} | "
            f"feast {version('feast')}, duckdb {duckdb.__version__}, pyarrow {pyarrow.__version__} | "
            f"load average at start {os.getloadavg()[0]:.1f}")


def flush_redis() -> None:
    import redis

    redis.Redis(host=REDIS[0], port=REDIS[1], db=REDIS[2]).flushdb()


def make_repo(root: Path, name: str, online: str, batch: int | None, prefix: str, files: list[str],
              timeout: float, gristmill: bool = False) -> str:
    repo = root / name
    repo.mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(store_yaml(repo, online, batch, gristmill))
    res = run("apply", timeout, repo=str(repo), prefix=prefix, files=files, online=prefix == "m")
    if "error" in res:
        raise SystemExit(f"feast apply failed in {repo}: {res['error']}")
    return str(repo)


def compare(feast_out: Path, duck_out: Path) -> dict:
    import numpy as np
    import pandas as pd

    a, b = (pd.read_parquet(p).sort_values([KEY, TS, "label"]).reset_index(drop=True) for p in (feast_out, duck_out))
    if len(a) != len(b) or list(a.columns) != list(b.columns):
        return {"rows": len(b), "mismatches": abs(len(a) - len(b)), "note": f"shape {a.shape} vs {b.shape}"}
    bad = ~(a[KEY].values == b[KEY].values) | ~(a[TS].values == b[TS].values)
    for col in a.columns[3:]:
        x, y = a[col].astype(float).to_numpy(), b[col].astype(float).to_numpy()
        bad |= ~((x == y) | (np.isnan(x) & np.isnan(y)))
    nulls = int(b[b.columns[3:]].isna().any(axis=1).sum())
    return {"rows": len(b), "mismatches": int(bad.sum()), "rows_with_nulls": nulls}


def bench_train(args, data: Path, repos: Path) -> dict:
    n_labels, n_events, n_ent = int(1e6 * args.scale), int(1e7 * args.scale), max(int(2e5 * args.scale), 10)
    t = time.monotonic()
    files = make_views(data, "t", n_events // VIEWS, n_ent, seed=1, once=False)
    labels = make_labels(data / "labels.parquet", n_labels, n_ent, seed=2)
    repo = make_repo(repos, "train", "sqlite", None, "t", files, args.timeout)
    print(f"training data ready in {time.monotonic() - t:.0f} s", file=sys.stderr)
    out = {"label_rows": n_labels, "events": n_events, "entities": n_ent, "features": VIEWS * FEATURES}
    out["duckdb"] = run("duckdb_train", args.timeout, labels=labels, files=files, out=str(repos / "duck.parquet"))
    print(f"duckdb ASOF: {out['duckdb']}", file=sys.stderr)
    out["feast"] = run("feast_train", args.timeout, repo=repo, labels=labels, out=str(repos / "feast.parquet"))
    print(f"feast: {out['feast']}", file=sys.stderr)
    out["gristmill"] = run("gristmill_train", args.timeout, repo=repo, labels=labels,
                           out=str(repos / "gristmill.parquet"))
    print(f"gristmill: {out['gristmill']}", file=sys.stderr)
    if "error" not in out["duckdb"]:
        for system in ("feast", "gristmill"):
            if "error" not in out[system]:
                out[f"ratio_{system}"] = out[system]["seconds"] / out["duckdb"]["seconds"]
                out[f"check_{system}"] = compare(repos / f"{system}.parquet", repos / "duck.parquet")
    return out


def bench_store(args, data: Path, repos: Path) -> dict:
    full = int(1e6 * args.scale)
    n = min(args.materialize_entities or full, full)
    files = make_views(data, "m", n, n, seed=3, once=True)
    out = {"entities": n, "full_entities": full, "materialize": [], "online": []}
    for store in args.stores:
        for batch in ((None, BATCH) if "materialize" in args.parts else (BATCH,)):
            name = f"{store}-batched" if batch else store
            if store == "redis":
                flush_redis()
            repo = make_repo(repos, name, store, batch, "m", files, args.timeout)
            res = run("materialize", args.timeout, repo=repo)  # online reads need the bounded run's data
            print(f"materialize {name}: {res}", file=sys.stderr)
            if "materialize" in args.parts:
                out["materialize"].append({"store": store, "batch": batch, **res})
            if batch and "online" in args.parts:
                res = run("online", args.timeout, repo=repo, entities=n, calls=args.calls)
                print(f"online {name}: {res}", file=sys.stderr)
                out["online"].append({"store": store, **res})
        if store == "redis":
            flush_redis()
    return out


def bench_gristmill(args, data: Path, repos: Path) -> dict:
    """Gristmill's materialize into its own online stores at the full size, same views and files
    layout as Feast's runs."""
    n = args.gristmill_entities or int(1e6 * args.scale)
    files = make_views(data, "m", n, n, seed=3, once=True)
    out = {"entities": n, "runs": []}
    for store in args.stores:
        if store == "redis":
            flush_redis()
        repo = make_repo(repos, f"gristmill-{store}", store, None, "m", files, args.timeout, gristmill=True)
        res = run("gm_materialize", args.timeout, repo=repo, files=files, entities=n, calls=args.calls,
                  end="2024-01-02T00:00:00+00:00")
        print(f"gristmill {store}: {res}", file=sys.stderr)
        out["runs"].append({"store": store, **res})
        if store == "redis":
            flush_redis()
    return out


def report(results: dict) -> None:
    print(results["machine"] + f", at end {results['load_end']:.1f} (other work on the machine skews figures)")
    tr = results.get("train")
    if tr:
        print(f"\n1. training set: {tr['label_rows']:,} label rows x {tr['features']} features "
              f"({VIEWS} views) over {tr['events']:,} events, {tr['entities']:,} entities")
        print(f"{'system':34} {'rows':>9} {'cols':>5} {'s':>8} {'RSS MB':>7} {'base MB':>7} {'x ASOF':>7}")
        for key, label in (("duckdb", "hand-written DuckDB ASOF JOIN"), ("feast", "Feast get_historical_features"),
                           ("gristmill", "Gristmill point-in-time join")):
            if key not in tr:
                continue
            r = tr[key]
            if "error" in r:
                print(f"{label:34} ERROR {r['error']}")
                continue
            ratio = r["seconds"] / tr["duckdb"]["seconds"] if "error" not in tr["duckdb"] else float("nan")
            print(f"{label:34} {r['rows']:>9} {r['cols']:>5} {r['seconds']:>8.2f} {r['rss_mb']:>7} "
                  f"{r['base_mb']:>7} {ratio:>7.2f}")
        for system in ("feast", "gristmill"):
            if f"check_{system}" in tr:
                c = tr[f"check_{system}"]
                print(f"sample check, {system} against ASOF: {c['rows']:,} rows (every {SAMPLE_EVERY}th entity), "
                      f"{c['mismatches']} mismatching ({c.get('rows_with_nulls', '?')} rows with no earlier "
                      f"event in some view){c.get('note', '')}")
        for system in ("feast", "gristmill"):
            if f"ratio_{system}" in tr:
                print(f"target {system} <= 1.5x the hand-written join: {tr[f'ratio_{system}']:.2f}x")
    st = results.get("store")
    if st and st["materialize"]:
        size = f"{st['entities']:,} entities"
        if st["entities"] < st["full_entities"]:
            size += f" (reduced from {st['full_entities']:,} with --materialize-entities to fit the time)"
        print(f"\n2. materialize(start, end): {size} x {VIEWS * FEATURES} features ({VIEWS} views)")
        print(f"{'store':8} {'batch':>7} {'s':>8} {'ent/s':>8} {'RSS MB':>7} {'base MB':>7}")
        for r in st["materialize"]:
            if "error" in r:
                print(f"{r['store']:8} {r['batch'] or 'all':>7} ERROR {r['error']}")
                continue
            print(f"{r['store']:8} {r['batch'] or 'all':>7} {r['seconds']:>8.1f} {st['entities'] / r['seconds']:>8.0f} "
                  f"{r['rss_mb']:>7} {r['base_mb']:>7}")
    gm = results.get("gristmill")
    if gm:
        print(f"\n2b. Gristmill materialize (bulk online store): {gm['entities']:,} entities x "
              f"{VIEWS * FEATURES} features ({VIEWS} views)")
        print(f"{'store':8} {'s':>8} {'ent/s':>9} {'RSS MB':>7} {'base MB':>7} {'rerun s':>8} {'rewritten':>9} "
              f"{'sample':>7} {'bad':>4}")
        for r in gm["runs"]:
            if "error" in r:
                print(f"{r['store']:8} ERROR {r['error']}")
                continue
            print(f"{r['store']:8} {r['seconds']:>8.1f} {gm['entities'] / r['seconds']:>9.0f} {r['rss_mb']:>7} "
                  f"{r['base_mb']:>7} {r['rerun_seconds']:>8.1f} {r['rerun_written']:>9} {r['sample_values']:>7} "
                  f"{r['mismatches']:>4}")
        print(f"{'store':8} {'entities':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}   (Gristmill's store)")
        for r in gm["runs"]:
            for size in ("1", "100"):
                s_ = r.get("online", {}).get(size)
                if s_:
                    print(f"{r['store']:8} {size:>8} {s_['p50_ms']:>8.2f} {s_['p99_ms']:>8.2f} {s_['mean_ms']:>8.2f}")
    if st and st["online"]:
        print(f"\n3. get_online_features(service of {VIEWS * FEATURES} features).to_dict(), "
              f"{st['entities']:,} entities stored, {results['calls']} calls after 50 warm-up")
        print(f"{'store':8} {'entities':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
        for r in st["online"]:
            if "error" in r:
                print(f"{r['store']:8} ERROR {r['error']}")
                continue
            for size in ("1", "100"):
                s = r[size]
                print(f"{r['store']:8} {size:>8} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['mean_ms']:>8.2f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        print(json.dumps(WORKERS[sys.argv[2]](**json.loads(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the full sizes")
    parser.add_argument("--parts", default="train,materialize,online,gristmill")
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--materialize-entities", type=int, help="cap for materialize/online entities")
    parser.add_argument("--gristmill-entities", type=int, help="entities of Gristmill's materialize "
                        "(default: the full size, 1M x scale)")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per measurement")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gristmill-fbench"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    args.parts, args.stores = args.parts.split(","), args.stores.split(",")
    data = args.dir / f"data-{args.scale:g}"
    repos = args.dir / "repos"
    shutil.rmtree(repos, ignore_errors=True)
    data.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine(), "scale": args.scale, "calls": args.calls}
    if "train" in args.parts:
        results["train"] = bench_train(args, data, repos)
    if "materialize" in args.parts or "online" in args.parts:
        results["store"] = bench_store(args, data, repos)
    if "gristmill" in args.parts:
        results["gristmill"] = bench_gristmill(args, data, repos)
    results["load_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        report(results)


if __name__ == "__main__":
    main()
