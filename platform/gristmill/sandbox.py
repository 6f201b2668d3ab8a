"""The locked-down query behind ``gristmill sql``: one read-only SELECT over the caller's projects.

The shared catalog file is never opened (another process may hold its write lock). Instead a fresh
in-memory DuckDB database gets one schema per allowed project, holding the views
``ingestion.catalog.view_statements`` derives from the lake's ``_catalog.json`` (the same SQL
``sync_views`` runs on the catalog). A lake without ``_catalog.json`` (tables registered by hand,
as the test fixture ``add_tables`` does) gets one view per ``*.parquet`` file directly in the lake
folder, named after the file's stem.

Then DuckDB may touch no file outside those lake folders and a private spill folder
(``allowed_directories`` with ``enable_external_access = false``; DuckDB resolves ``..`` and
symlinks before it checks a path), and ``lock_configuration`` stops the query undoing any of it.
Only one SELECT (or ``EXPLAIN [ANALYZE]`` of one) runs, and it is interrupted after a deadline.
"""

from __future__ import annotations

# Per-query DuckDB caps, set before the configuration is locked.
LIMITS = {"memory_limit": "1GB", "threads": 2}


def sandboxed_query(ws, project: str, also: list[str], query: str, max_rows: int, max_seconds: float) -> dict:
    """Run ``query`` over the tables of ``project`` (first on the search path) and of ``also`` only.

    Returns ``{"columns": [...], "rows": [[...], ...], "truncated": bool, "row_limit": max_rows}``:
    at most ``max_rows`` rows (``truncated`` says whether there were more), every value
    JSON-serialisable (see :func:`_jsonable`). A refused statement, a failing query, or one still
    running after ``max_seconds`` raises a one-line :class:`~gristmill.errors.GristmillError`.
    """
    import tempfile
    import threading

    import duckdb

    from gristmill.errors import GristmillError

    if max_rows < 1 or not max_seconds > 0:
        raise GristmillError(
            f"max_rows must be >= 1 and max_seconds > 0; got {max_rows!r} and {max_seconds!r}")
    lakes = {p: ws.lake(p) for p in dict.fromkeys([project, *also])}  # ws.lake checks each name
    with tempfile.TemporaryDirectory(prefix="gristmill-sql-") as spill:
        con = duckdb.connect(":memory:")
        try:
            _check_read_only(con, query)
            _lock_down(con, lakes, spill)
            fired = threading.Event()

            def stop() -> None:
                fired.set()
                con.interrupt()

            timer = threading.Timer(max_seconds, stop)
            timer.daemon = True
            timer.start()
            try:
                cursor = con.execute(query)
                columns = [d[0] for d in cursor.description]
                rows = cursor.fetchmany(max_rows + 1)
            except duckdb.Error as exc:
                if fired.is_set():
                    raise GristmillError(f"query ran past {max_seconds:g} seconds and was stopped") from None
                raise GristmillError(f"query failed: {_first_line(exc)}") from None
            finally:
                timer.cancel()
                timer.join()  # so the timer never interrupts a closed connection
        finally:
            con.close()
    return {"columns": columns, "rows": [[_jsonable(v) for v in row] for row in rows[:max_rows]],
            "truncated": len(rows) > max_rows, "row_limit": max_rows}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_read_only(con, query: str) -> None:
    """Refuse anything but one SELECT (or ``EXPLAIN [ANALYZE]`` of one: ANALYZE runs its statement)."""
    import re

    import duckdb

    from gristmill.errors import GristmillError

    def kinds(text: str) -> list:
        try:
            return [s.type for s in con.extract_statements(text)]
        except duckdb.Error as exc:
            raise GristmillError(f"query failed: {_first_line(exc)}") from None

    found = kinds(query)
    if len(found) != 1:
        raise GristmillError(f"only a single statement can run here; got {len(found)}")
    if found[0] == duckdb.StatementType.EXPLAIN:
        inner = re.match(r"\s*explain\b\s*(?:analy[sz]e\b)?(.*)", query, re.IGNORECASE | re.DOTALL)
        found = kinds(inner.group(1)) if inner else found
    if found != [duckdb.StatementType.SELECT]:
        kind = found[0].name if found else "nothing"
        raise GristmillError(f"only a read query (SELECT, or EXPLAIN of one) can run here; got {kind}")


def _lock_down(con, lakes: dict, spill: str) -> None:
    """Let ``con`` read only the ``lakes`` ({project: lake folder}), create their views, lock it."""
    from gristmill.errors import GristmillError
    from gristmill.sql import literal
    from ingestion.catalog import project_statements

    for name, value in LIMITS.items():
        con.execute(f"SET {name} = {literal(value) if isinstance(value, str) else value}")
    con.execute("SET TimeZone = 'UTC'")  # as gristmill.sql.connect: naive timestamps are UTC
    con.execute(f"SET temp_directory = {literal(spill)}")  # DuckDB adds it to the allowed folders
    con.execute(f"SET allowed_directories = [{', '.join(literal(lake) for lake in lakes.values())}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET python_enable_replacements = false")  # no scans of the caller's Python variables
    for project, lake in lakes.items():  # after the lock-down: a view can only read its own lake
        try:
            for statement in project_statements(project, lake):
                con.execute(statement)
        except Exception as exc:
            raise GristmillError(
                f"cannot open the tables of project '{project}': {_first_line(exc)}") from None
    con.execute(f"SET search_path = {literal(','.join(lakes))}")
    con.execute("SET lock_configuration = true")


def _jsonable(value):
    """A DuckDB value as JSON: dates and times in ISO 8601, decimals as floats, bytes as hex,
    non-finite floats as strings ("nan", "inf"), other unknown types (UUID, interval) via ``str``."""
    import math
    from datetime import date, datetime, time
    from decimal import Decimal

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)
