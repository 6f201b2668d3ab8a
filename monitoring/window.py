"""What a monitoring run compares: the current window (a span of the prediction log or a file of
feature rows) and, for quality, the labels that arrived after the predictions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gristmill.errors import DataError, GristmillError

from monitoring.jobs import JobSpec

if TYPE_CHECKING:
    import pandas as pd

    from gristmill.spec import ProjectSpec
    from gristmill.workspace import Workspace


def prediction_log_window(ws: Workspace, project: str, start: datetime, end: datetime,
                          bad_files: list[dict] | None = None) -> pd.DataFrame:
    """Prediction-log rows with ``start <= _ts < end`` (only the date folders that can hold them).

    A file DuckDB cannot read (truncated, not Parquet, no ``_ts``) is skipped: it is appended to
    ``bad_files`` as ``{"file", "reason"}`` and the other files are read. Only when every file is
    unreadable is the window empty.
    """
    import pandas as pd

    from gristmill.serving.prediction_log import log_folder
    from gristmill.workspace import check_project_name

    folder = log_folder(ws.root, check_project_name(project))
    files: list[str] = []
    if folder.is_dir():
        for sub in sorted(folder.glob("date=*")):
            try:
                day = datetime.strptime(sub.name[5:], "%Y-%m-%d").date()
            except ValueError:
                continue
            if start.date() <= day <= end.date():
                files += [str(p) for p in sorted(sub.glob("*.parquet"))]
    if not files:
        return pd.DataFrame()
    try:
        return _read_log(files, start, end)
    except Exception:  # at least one file is bad: find which, read the others
        pass
    frames = []
    for file in files:  # every column of every row group decoded, so a bad page is found too
        try:
            frames.append(_read_log([file], start, end))
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            if bad_files is not None:
                bad_files.append({"file": file, "reason": reason or type(exc).__name__})
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_log(files: list[str], start: datetime, end: datetime) -> pd.DataFrame:
    import duckdb

    from gristmill.sql import literal

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        listing = ", ".join(literal(f) for f in files)
        source = f"read_parquet([{listing}], union_by_name = true)"
        columns = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        # shadow rows were scored, never answered: live traffic is what clients received
        shadow = " AND _variant IS DISTINCT FROM 'shadow'" if "_variant" in columns else ""
        query = (f"SELECT * FROM {source} "
                 "WHERE CAST(_ts AS TIMESTAMPTZ) >= ? AND CAST(_ts AS TIMESTAMPTZ) < ?" + shadow)
        return con.execute(query, [start, end]).df()
    finally:
        con.close()


def read_file(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise GristmillError(f"no such file: {path}")
    if path.suffix not in (".parquet", ".csv", ".txt"):
        raise GristmillError(f"{path}: give a .parquet or .csv file of feature rows")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # the one file named: a clear error, not a traceback
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot be read as {path.suffix[1:].upper()} ({reason})") from None


def label_table(ws: Workspace, spec: ProjectSpec, job: JobSpec) -> pd.DataFrame | None:
    """The label table as (key, label_ts, target), or None when there is none."""
    from gristmill.catalog import lake_reader
    from gristmill.sql import ident, qualified

    cfg = job.labels
    table = cfg.table or spec.label.table
    key = cfg.key or spec.label_key()
    ts = cfg.timestamp or spec.label.timestamp
    target = cfg.target or spec.label.target
    if not ws.lake(spec.project).is_dir():
        return None
    con = lake_reader(ws, spec.project)  # the lake, not the catalog file: no wait for a writer
    try:
        return con.execute(f"SELECT CAST({ident(key)} AS VARCHAR) AS key, "
                           f"CAST({ident(ts)} AS TIMESTAMPTZ) AS label_ts, {ident(target)} AS target "
                           f"FROM {qualified(spec.project, table)} WHERE {ident(ts)} IS NOT NULL").df()
    except Exception as exc:
        raise DataError(f"labels: cannot read {spec.project}.{table} ({key}, {ts}, {target}): "
                        f"{str(exc).splitlines()[0]}; fix `labels` of the job") from None
    finally:
        con.close()


def join_labels(window: pd.DataFrame, labels: pd.DataFrame, horizon_days: float) -> pd.DataFrame:
    """Each prediction with the first label of its entity observed at or after it, within the horizon."""
    import pandas as pd

    preds = window[window["_entity_id"].notna()].copy()
    if preds.empty or labels.empty:
        return pd.DataFrame(columns=["prediction", "target", "probabilities"])
    preds["key"] = preds["_entity_id"].astype(str)
    preds["_ts"] = pd.to_datetime(preds["_ts"], utc=True).astype("datetime64[us, UTC]")
    labels = labels.copy()
    labels["label_ts"] = pd.to_datetime(labels["label_ts"], utc=True).astype("datetime64[us, UTC]")
    joined = pd.merge_asof(preds.sort_values("_ts"), labels.sort_values("label_ts"), left_on="_ts",
                           right_on="label_ts", by="key", direction="forward",
                           tolerance=pd.Timedelta(days=horizon_days))
    joined = joined[joined["target"].notna()]
    return pd.DataFrame({"prediction": joined["_prediction"].astype(str),
                         "target": joined["target"],
                         "probabilities": joined.get("_probabilities")})


# -- the run ---------------------------------------------------------------------------------------
