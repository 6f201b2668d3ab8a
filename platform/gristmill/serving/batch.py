"""Batch scoring: ``gristmill predict <project> in.parquet -o out.parquet``, in chunks.

The champion model scores a file of feature rows (Parquet, CSV or JSON Lines, read by DuckDB) a
chunk at a time, so files larger than memory score in bounded memory. The output holds every input
column that is not a model feature, then ``prediction``, one ``probability_<class>`` per class for
classifiers, and ``model_version``.
"""

from __future__ import annotations

from pathlib import Path

from gristmill.errors import DataError, GristmillError, ModelNotFound
from gristmill.sql import literal
from gristmill.workspace import Workspace

READERS = {".parquet": "read_parquet", ".csv": "read_csv", ".tsv": "read_csv", ".jsonl": "read_json_auto",
           ".ndjson": "read_json_auto", ".json": "read_json_auto"}


def champion(ws: Workspace, project: str):
    """``(version, TabularModel)`` of the project's champion."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from gristmill.training.train import CHAMPION, configure_mlflow, model_name

    configure_mlflow(ws)
    try:
        version = MlflowClient().get_model_version_by_alias(model_name(project), CHAMPION)
    except MlflowException:
        raise ModelNotFound(f"project {project!r} has no '{CHAMPION}' model: run `gristmill train "
                            f"{project}` first") from None
    return str(version.version), mlflow.pyfunc.load_model(version.source).unwrap_python_model().model


def predict_file(ws: Workspace, project: str, source: Path, target: Path, chunk_rows: int = 100_000,
                 progress: bool = False) -> dict:
    """Score ``source`` into ``target`` (Parquet); returns rows, chunks and the model version."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = READERS.get(source.suffix.lower())
    if reader is None:
        raise GristmillError(f"{source.name}: give a .parquet, .csv, .tsv or .jsonl file "
                             "(or ingest it first and export a table)")
    if not source.is_file():
        raise GristmillError(f"no such file: {source}")
    if target.suffix.lower() != ".parquet":
        raise GristmillError(f"{target.name}: the output is written as Parquet: name it *.parquet")
    version, model = champion(ws, project)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    relation = f"{reader}({literal(source)})"
    try:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        total = con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
    except duckdb.Error as exc:
        raise DataError(f"{source.name}: cannot be read ({str(exc).splitlines()[0]})") from None
    if not set(columns) & set(model.features):
        shown = ", ".join(model.features[:6]) + (", ..." if len(model.features) > 6 else "")
        raise DataError(f"{source.name} has none of the model's features ({shown}): give rows of "
                        "feature values, e.g. a training-set file")
    passthrough = [c for c in columns if c not in model.features]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    writer, rows, chunks = None, 0, 0
    batches = con.execute(f"SELECT * FROM {relation}").to_arrow_reader(chunk_rows)
    with _bar(progress, total) as (bar, task):
        try:
            for batch in batches:
                frame = batch.to_pandas()
                scored = model.predict_table(frame).set_index(frame.index)
                scored["model_version"] = version
                out = pa.Table.from_pandas(frame[passthrough].join(scored), preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, out.schema, compression="zstd")
                writer.write_table(out.cast(writer.schema))
                rows, chunks = rows + len(frame), chunks + 1
                if bar:
                    bar.advance(task, len(frame))
        finally:
            if writer is not None:
                writer.close()
    if writer is None:
        raise DataError(f"{source.name} has no rows")
    tmp.replace(target)
    return {"project": project, "model_version": version, "input": str(source), "output": str(target),
            "rows": rows, "chunks": chunks}


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
