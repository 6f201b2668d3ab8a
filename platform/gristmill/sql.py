"""Small helpers for building SQL from names that come from user data (always quoted).

Also home of :func:`sandboxed_query` (defined in :mod:`gristmill.sandbox`), the locked-down query
that user-facing SQL runs through.
"""

from __future__ import annotations

from pathlib import Path

from gristmill.sandbox import sandboxed_query  # noqa: F401  (re-exported: callers import it from here)


def ident(name: str) -> str:
    """Quote an identifier for DuckDB: ``a"b`` -> ``"a""b"``."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: str | Path) -> str:
    """Quote a string literal: ``it's`` -> ``'it''s'``."""
    return "'" + str(value).replace("'", "''") + "'"


def qualified(schema: str, table: str) -> str:
    return f"{ident(schema)}.{ident(table)}"


def connect(catalog: Path, read_only: bool = False):
    """Open the workspace's DuckDB catalog directly, with no lock: for single-process tools and tests.

    Gristmill's own writers go through :func:`gristmill.catalog.write_catalog` (locked, held for
    milliseconds) and its readers through :func:`gristmill.catalog.lake_reader` (never opens it).
    """
    import duckdb

    if read_only and not catalog.exists():
        read_only = False
    catalog.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(catalog), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")  # naive timestamps in the lake are UTC
    return con
