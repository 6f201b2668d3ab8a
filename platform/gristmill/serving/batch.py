"""Batch scoring: ``gristmill predict <project> in.parquet -o out.parquet``, in chunks.

The champion model scores a file (Parquet, CSV or JSON Lines, read by DuckDB) a chunk at a time, so
files larger than memory score in bounded memory. The file's columns must be accounted for, as
``/predict`` refuses unknown keys:

- every model feature is a column, or the file has the entity key column (``customer_id``) and
  the features it lacks are read from the online store for each row's id (an id the store does
  not know is an error);
- a column that is neither a feature nor the entity key is an error naming it, unless ``keep``
  (``--keep COL``) names it: kept columns are copied to the output;
- a missing feature is an error naming it, unless ``allow_missing`` (``--allow-missing``): then
  it is scored as a missing value and the summary counts it (``missing_features``).

The output holds the entity key and kept columns, then ``prediction``, one
``probability_<class>`` per class for classifiers, and ``model_version``.
"""

from __future__ import annotations

from pathlib import Path

from gristmill.errors import DataError, GristmillError, ModelNotFound, shown
from gristmill.sql import literal
from gristmill.workspace import Workspace

READERS = {".parquet": "read_parquet", ".csv": "read_csv", ".tsv": "read_csv", ".jsonl": "read_json_auto",
           ".ndjson": "read_json_auto", ".json": "read_json_auto"}


def champion(ws: Workspace, project: str):
    """``(version, TabularModel)`` of the project's champion."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from gristmill.config import mlflow_client
    from gristmill.training.train import CHAMPION, configure_mlflow, model_name

    configure_mlflow(ws)
    try:
        version = mlflow_client(ws).get_model_version_by_alias(model_name(project), CHAMPION)
    except MlflowException:
        raise ModelNotFound(f"project {project!r} has no '{CHAMPION}' model: run `gristmill train "
                            f"{project}` first") from None
    return str(version.version), mlflow.pyfunc.load_model(version.source).unwrap_python_model().model


def _listed(names: list[str], limit: int = 10) -> str:
    return ", ".join(shown(n) for n in names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_columns(name: str, columns: list[str], features: list[str], key: str | None, keep: list[str],
                  allow_missing: bool) -> tuple[list[str], bool]:
    """``(missing features, read them from the store)`` for a file with ``columns``, or a
    :class:`DataError` naming the columns that do not fit (see the module's docstring)."""
    wanted = set(features)
    absent = [k for k in keep if k not in columns]
    if absent:
        raise DataError(f"{name}: --keep names columns the file does not have: {_listed(absent)}")
    unknown = [c for c in columns if c not in wanted and c != key and c not in keep]
    if unknown:
        raise DataError(f"{name}: {len(unknown)} column(s) are not features of the model: {_listed(unknown)}; "
                        f"drop them, or copy them to the output with --keep COL")
    missing = [f for f in features if f not in columns]
    if not missing:
        return [], False
    if key is not None and key in columns:
        return missing, True
    if not allow_missing:
        by_key = f", or a {key!r} column to read them from the online store" if key else ""
        raise DataError(f"{name} lacks {len(missing)} of the model's {len(features)} features: "
                        f"{_listed(missing)}; give every feature{by_key}, or --allow-missing to score "
                        "them as missing values")
    return missing, False


class _Store:
    """The project's features from the online store, for the ids of one chunk."""

    def __init__(self, ws: Workspace, project: str, key: str, features: list[str]) -> None:
        from gristmill.features.naming import service_name
        from gristmill.features.store import open_store

        self.store, self.key, self.features = open_store(ws), key, features
        self.service = self.store.get_feature_service(service_name(project))

    def fill(self, frame, source_name: str, allow_missing: bool) -> int:
        """Add the missing features to ``frame`` in place; returns the count of unknown ids."""
        import time

        from gristmill.features.naming import REQUEST_TIME
        from gristmill.features.online_lookup import lookup

        ids = [None if v is None else str(v) for v in frame[self.key].tolist()]
        online = lookup(self.store, self.service, {self.key: ids, REQUEST_TIME: [time.time()] * len(ids)})
        stored = [f for f in self.features if f in online]
        unknown = [i for n, i in enumerate(ids) if all(online[f][n] is None for f in stored)]
        if unknown and not allow_missing:
            raise DataError(f"{source_name}: {len(unknown)} {self.key} value(s) have no features in the "
                            f"online store: {_listed([str(u) for u in unknown], 5)} (materialize them, or "
                            "--allow-missing to score them as missing values)")
        for f in self.features:
            frame[f] = online[f] if f in online else None
        return len(unknown)


def predict_file(ws: Workspace, project: str, source: Path, target: Path, chunk_rows: int = 100_000,
                 progress: bool = False, allow_missing: bool = False, keep: list[str] | None = None) -> dict:
    """Score ``source`` into ``target`` (Parquet); returns rows, chunks, the model version and what
    was missing or read from the store."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gristmill.spec import load_spec

    reader = READERS.get(source.suffix.lower())
    if reader is None:
        raise GristmillError(f"{source.name}: give a .parquet, .csv, .tsv or .jsonl file "
                             "(or ingest it first and export a table)")
    if not source.is_file():
        raise GristmillError(f"no such file: {source}")
    if target.suffix.lower() != ".parquet":
        raise GristmillError(f"{target.name}: the output is written as Parquet: name it *.parquet")
    version, model = champion(ws, project)
    spec_path = ws.spec_path(project)
    key = load_spec(spec_path).entity.key if spec_path.is_file() else None  # None: features only
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    relation = f"{reader}({literal(source)})"
    try:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        total = con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
    except duckdb.Error as exc:
        raise DataError(f"{source.name}: cannot be read ({str(exc).splitlines()[0]})") from None
    keep = list(dict.fromkeys(keep or []))
    missing, from_store = check_columns(source.name, columns, model.features, key, keep, allow_missing)
    store = _Store(ws, project, key, missing) if from_store else None
    passthrough = [c for c in columns if c not in model.features]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    writer, rows, chunks, unknown_ids = None, 0, 0, 0
    batches = con.execute(f"SELECT * FROM {relation}").to_arrow_reader(chunk_rows)
    with _bar(progress, total) as (bar, task):
        try:
            for batch in batches:
                frame = batch.to_pandas()
                if store is not None:
                    unknown_ids += store.fill(frame, source.name, allow_missing)
                scored = model.predict_table(frame).set_index(frame.index)
                scored["model_version"] = version
                out = pa.Table.from_pandas(frame[passthrough].join(scored), preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, out.schema, compression="zstd")
                writer.write_table(out.cast(writer.schema))
                rows, chunks = rows + len(frame), chunks + 1
                if bar:
                    bar.advance(task, len(frame))
        except BaseException:
            if writer is not None:
                writer.close()
                writer = None
            tmp.unlink(missing_ok=True)
            raise
        finally:
            if writer is not None:
                writer.close()
    if rows == 0:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{source.name} has no rows")
    tmp.replace(target)
    return {"project": project, "model_version": version, "input": str(source), "output": str(target),
            "rows": rows, "chunks": chunks, "features": len(model.features),
            "missing_features": [] if from_store else missing,
            "features_from_store": missing if from_store else [],
            "unknown_ids": unknown_ids, "kept": keep}


class _bar:
    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self.progress = enabled, total, None

    def __enter__(self):
        if not self.enabled:
            return None, None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
        self.progress.__enter__()
        return self.progress, self.progress.add_task("scoring", total=self.total)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)
