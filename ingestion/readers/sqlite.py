"""SQLite databases: every user table, read with Python's sqlite3 in batches (read-only).

DuckDB's sqlite extension would download at first use, which fails offline. SQLite's dynamic types
mean a column may mix numbers and text: such a column keeps every value as text.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ingestion.discover import InputFile
from ingestion.names import column_names
from ingestion.readers import RawPart
from ingestion.readers.staging import append_arrow, arrow_table

BATCH = 50_000


def read_sqlite(con, file: InputFile, prefix: str, scratch: Path) -> list[RawPart]:
    stem = file.local.stem if file.member is None else Path(file.member).stem
    db = sqlite3.connect(f"file:{file.local}?mode=ro&immutable=1", uri=True)
    parts = []
    try:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\' ORDER BY name")]
        for number, name in enumerate(tables):
            quoted = '"' + name.replace('"', '""') + '"'
            cursor = db.execute(f"SELECT * FROM {quoted}")
            header = [d[0] for d in cursor.description]
            names = column_names(header)
            table, created, count = f"{prefix}_t{number}", False, 0
            while batch := cursor.fetchmany(BATCH):
                rows = [list(r) for r in batch]
                numbers = list(range(count + 1, count + len(rows) + 1))
                append_arrow(con, table, arrow_table(names, rows, numbers), created)
                created, count = True, count + len(rows)
            if not created:
                append_arrow(con, table, arrow_table(names, [], []), False)
            parts.append(RawPart(file, table, name if len(tables) > 1 else stem, names,
                                 dict(zip(names, header)), "sqlite3", count,
                                 notes={"sqlite_table": name}, display=f"{file.display}[{name}]"))
    finally:
        db.close()
    return parts
