"""Helpers the readers share to put Python and Arrow data into DuckDB staging tables."""

from __future__ import annotations

import json
from typing import Any

from gristmill.sql import ident


def arrow_column(values: list[Any]):
    """An Arrow array for a list of Python values; mixed kinds fall back to text.

    Numbers mixed with text, or booleans mixed with numbers, keep every value by writing it as
    text (``true``, ``12.5``); lists of mixed items become lists of text; dicts become JSON text.
    """
    import pyarrow as pa

    try:
        if any(isinstance(v, dict) for v in values):
            raise pa.ArrowInvalid("objects")
        kinds = {type(v) for v in values if v is not None}
        if bool in kinds and len(kinds) > 1:
            raise pa.ArrowInvalid("booleans mixed with other values")
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        if all(v is None or isinstance(v, list) for v in values):
            return pa.array([None if v is None else [_text(i) for i in v] for v in values],
                            type=pa.list_(pa.string()))
        return pa.array([None if v is None else _text(v) for v in values], type=pa.string())


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def arrow_table(columns: list[str], rows: list[list[Any]], row_numbers: list[int]):
    """A table from row-major values (``columns`` already snake_case) plus ``_row_number``."""
    import pyarrow as pa

    arrays = [arrow_column([row[i] if i < len(row) else None for row in rows]) for i in range(len(columns))]
    arrays.append(pa.array(row_numbers, type=pa.int64()))
    return pa.Table.from_arrays(arrays, names=[*columns, "_row_number"])


def append_arrow(con, table: str, data, created: bool) -> None:
    """Create ``table`` from an Arrow table, or add its rows by name (new columns are added and
    conflicting types widened to text)."""
    con.register("_incoming", data)
    try:
        if not created:
            con.execute(f"CREATE TABLE {ident(table)} AS SELECT * FROM _incoming")
            return
        have = {r[0]: r[1] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall()}
        incoming = {r[0]: r[1] for r in con.execute("DESCRIBE _incoming").fetchall()}
        for name, dtype in incoming.items():
            if name not in have:
                con.execute(f"ALTER TABLE {ident(table)} ADD COLUMN {ident(name)} {dtype}")
            elif have[name] != dtype and have[name] != "VARCHAR" and dtype != '"NULL"':
                if have[name] == '"NULL"':
                    con.execute(f"ALTER TABLE {ident(table)} ALTER {ident(name)} TYPE {dtype}")
                else:
                    con.execute(f"ALTER TABLE {ident(table)} ALTER {ident(name)} TYPE VARCHAR")
        con.execute(f"INSERT INTO {ident(table)} BY NAME SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")
