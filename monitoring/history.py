"""The history table: one summary row per monitoring run, in ``<workspace>/monitoring/history.db``.

SQLite (standard library, safe for the scheduler and a CLI writing at the same time). Columns are
fixed; lists are stored as JSON text. ``gristmill monitor history`` reads it.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "append", "history_db", "read"]

COLUMNS: dict[str, str] = {
    "run_id": "TEXT PRIMARY KEY",
    "project": "TEXT NOT NULL",
    "job": "TEXT NOT NULL",
    "status": "TEXT NOT NULL",  # ok | alert | skipped | error
    "started_at": "TEXT NOT NULL",
    "finished_at": "TEXT",
    "seconds": "REAL",
    "model_version": "TEXT",
    "reference_id": "TEXT",
    "window_start": "TEXT",
    "window_end": "TEXT",
    "n_reference": "INTEGER",
    "n_current": "INTEGER",
    "n_sampled": "INTEGER",
    "sample_error": "REAL",
    "drift_share": "REAL",
    "dataset_drift": "INTEGER",
    "drifted_columns": "TEXT",
    "prediction_drift_score": "REAL",
    "prediction_drift": "INTEGER",
    "target_drift_score": "REAL",
    "target_drift": "INTEGER",
    "n_labelled": "INTEGER",
    "quality_metric": "TEXT",
    "quality": "REAL",
    "quality_baseline": "REAL",
    "max_missing_increase": "REAL",
    "max_new_category_share": "REAL",
    "max_out_of_range_share": "REAL",
    "alerts": "TEXT",
    "html_path": "TEXT",
    "json_path": "TEXT",
    "summary_path": "TEXT",
    "message": "TEXT",
    # added later: older history files gain these columns when opened
    "verdict": "TEXT",  # the run's one verdict line, as the CLI prints it
    "compared_columns": "INTEGER",  # the drift share's denominator (columns with values on both sides)
    "not_compared": "TEXT",  # [{column, reason}]
    "window_error": "REAL",  # the window's own DKW bound at alpha 0.05 (n = n_current)
    "n_bad_files": "INTEGER",  # prediction-log files skipped as unreadable
    "bad_files": "TEXT",  # [{file, reason}]
    "n_non_finite": "INTEGER",  # +-inf values in the window (counted as out of range)
    "evidently_agrees": "INTEGER",  # 1: the saved Evidently report shows the same verdict
}
_JSON = {"drifted_columns", "alerts", "not_compared", "bad_files"}


def history_db(workspace: Path) -> Path:
    return Path(workspace) / "monitoring" / "history.db"


def _connect(workspace: Path) -> sqlite3.Connection:
    path = history_db(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30)
    cols = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS runs ({cols})")
    have = {row[1] for row in con.execute("PRAGMA table_info(runs)").fetchall()}
    for name, kind in COLUMNS.items():
        if name not in have:  # a history file of an older version
            try:
                con.execute(f'ALTER TABLE runs ADD COLUMN "{name}" {kind}')
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise
    con.execute("CREATE INDEX IF NOT EXISTS runs_project ON runs (project, job, started_at)")
    return con


def append(workspace: Path, row: dict[str, Any]) -> None:
    """Insert one run's summary row (unknown keys are an error, missing ones NULL)."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise KeyError(f"history: unknown columns {sorted(unknown)}")
    values = {k: (json.dumps(v) if k in _JSON and v is not None else v) for k, v in row.items()}
    names = list(values)
    with closing(_connect(workspace)) as con, con:
        con.execute(f"INSERT INTO runs ({', '.join(chr(34) + n + chr(34) for n in names)}) "
                    f"VALUES ({', '.join('?' for _ in names)})", [values[n] for n in names])


def read(workspace: Path, project: str, job: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The latest ``limit`` runs of ``project`` (and ``job``), oldest first."""
    if not history_db(workspace).is_file():
        return []
    query = "SELECT * FROM runs WHERE project = ?"
    args: list[Any] = [project]
    if job:
        query += " AND job = ?"
        args.append(job)
    query += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
    args.append(int(limit))
    with closing(_connect(workspace)) as con:
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute(query, args).fetchall()]
    for row in rows:
        for key in _JSON:
            if row.get(key):
                row[key] = json.loads(row[key])
    return rows[::-1]
