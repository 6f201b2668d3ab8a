"""``gristmill features suggest``: feature tables proposed from the ingested tables themselves.

For every ingested table of the project except the label table:

- the **key** is the column whose values are the label table's entity ids (most distinct values
  found among them, at least half); a table with no such column is left out, with the reason;
- the **timestamp** is a date or timestamp column, preferring names that say when a row was
  written or valid (``updated``, ``date``, ``_at``...); none makes the table static attributes;
- the **kind** is ``events`` when an entity has several rows at different times (transactions,
  tickets, invoices), else ``snapshot``;
- for events, columns that identify rows (nearly one distinct value per row) are left out.

The result is a ``features:`` section to paste into the spec (or ``--json`` for scripts), each
entry with a comment saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gristmill.spec import ProjectSpec
from gristmill.catalog import lake_reader
from gristmill.sql import ident, qualified
from gristmill.workspace import Workspace

_TIME_HINT = re.compile(r"(updated|modified|date|datum|time|_at$|_on$|created|valid|as_of|period)", re.I)
TEMPORAL = ("DATE", "TIMESTAMP")
KEYISH = ("VARCHAR", "BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "UINTEGER", "SMALLINT")


@dataclass
class Suggestion:
    table: str
    entry: dict
    why: str


def suggest(ws: Workspace, spec: ProjectSpec) -> tuple[list[Suggestion], dict[str, str]]:
    """Proposed ``features`` entries, and the tables left out with the reason."""
    project, label = spec.project, spec.label
    con = lake_reader(ws, project)  # the lake, not the catalog file: no wait for a writer
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1", [project]).fetchall()]
        if label.table not in tables:
            from gristmill.errors import DataError

            raise DataError(f"label.table: no table {label.table!r} in project {project!r}: "
                            f"run `gristmill ingest {project}` first")
        ids = f"(SELECT DISTINCT CAST({ident(spec.label_key())} AS VARCHAR) FROM {qualified(project, label.table)})"
        out, skipped = [], {}
        for table in tables:
            if table == label.table:
                continue
            found = _suggest_table(con, project, table, spec.entity.key, ids)
            if isinstance(found, str):
                skipped[table] = found
            else:
                out.append(found)
        return out, skipped
    finally:
        con.close()


def _suggest_table(con, project: str, table: str, entity_key: str, ids: str) -> Suggestion | str:
    source = qualified(project, table)
    columns = {r[0]: r[1] for r in con.execute(f"DESCRIBE {source}").fetchall()
               if r[0] not in ("_source_file", "_row_number")}
    rows = con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    if not rows:
        return "no rows"
    key, share = None, 0.0
    for col, dtype in columns.items():
        if not dtype.startswith(KEYISH):
            continue
        distinct, known = con.execute(
            f"SELECT count(DISTINCT v), count(DISTINCT v) FILTER (WHERE v IN {ids}) FROM "
            f"(SELECT CAST({ident(col)} AS VARCHAR) AS v FROM {source})").fetchall()[0]
        if distinct and known / distinct > share:
            key, share = col, known / distinct
    if key is None or share < 0.5:
        return "no column holds the label table's entity ids"
    times = [c for c, t in columns.items() if t.startswith(TEMPORAL) and c != key]
    timestamp = sorted(times, key=lambda c: (not _TIME_HINT.search(c), times.index(c)))[0] if times else None
    per_key, per_key_time = con.execute(
        f"SELECT count(*) / count(DISTINCT {ident(key)}), "
        f"count(DISTINCT ({ident(key)}, {ident(timestamp) if timestamp else 'NULL'})) "
        f"/ count(DISTINCT {ident(key)}) FROM {source}").fetchall()[0]
    entry: dict = {"table": table}
    if key != entity_key:
        entry["key"] = key
    reasons = [f"key {key!r} ({share:.0%} of its values are label ids)"]
    if timestamp:
        entry["timestamp"] = timestamp
        reasons.append(f"timestamp {timestamp!r}")
    if timestamp and per_key_time > 1.2:
        entry["kind"] = "events"
        idlike = [c for c in columns if c not in (key, timestamp) and con.execute(
            f"SELECT count(DISTINCT {ident(c)}) > 0.9 * count(*) FROM {source}").fetchall()[0][0]
            and not columns[c].startswith(("DOUBLE", "FLOAT", "DECIMAL"))]
        if idlike:
            entry["columns"] = [c for c in columns if c not in (key, timestamp, *idlike)]
            reasons.append(f"row ids left out: {', '.join(idlike)}")
        reasons.insert(0, f"events: {per_key:.1f} rows per entity at different times")
    else:
        reasons.insert(0, "snapshot: about one row per entity and time" if timestamp
                       else "static attributes: no date or timestamp column")
    return Suggestion(table, entry, "; ".join(reasons))


def as_yaml(suggestions: list[Suggestion], skipped: dict[str, str]) -> str:
    """A ``features:`` section with a comment per entry."""
    import yaml

    lines = ["features:"]
    for s in suggestions:
        lines.append(f"  # {s.why}")
        body = yaml.safe_dump([s.entry], sort_keys=False, default_flow_style=None).rstrip()
        lines += ["  " + line for line in body.splitlines()]
    for table, reason in skipped.items():
        lines.append(f"  # left out {table}: {reason}")
    return "\n".join(lines) + "\n"
