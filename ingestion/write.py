"""Writing one table version: union of its files, types applied, Parquet + quarantine + records.

A version folder ``<lake>/<table>/<version>/`` holds ``data.parquet`` (zstd), ``quarantine.parquet``
(rows that could not be parsed, with file, line or row, raw text and reason), ``schema.json`` (the
schema record: types, null and distinct counts, interpretations, failed examples, lineage), and
``data.jsonl`` on request. It is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from gristmill.sql import ident, literal
from ingestion.infer import Plan, plan_columns, prepare, settled_plans
from ingestion.models import ColumnRecord, SourceRecord
from ingestion.readers import RawPart, Reject

INTERNAL = ("_source_file", "_row_number")
QUARANTINE_COLUMNS = "file VARCHAR, line BIGINT, row_number BIGINT, raw VARCHAR, reason VARCHAR"
_KIND_WORDS = {"integer": "an integer", "decimal": "a number", "boolean": "a yes/no value",
               "date": "a date", "timestamp": "a timestamp"}


@dataclass
class Group:
    """Parts (files, sheets, tables) that form one logical dataset."""

    name: str
    source_index: int
    parts: list[RawPart]
    types: dict[str, str] = field(default_factory=dict)
    source_key: str = ""

    def fingerprint_items(self) -> list[tuple[str, str]]:
        return sorted((p.display, p.file.sha256) for p in self.parts)


def _union(group: Group) -> str:
    selects = [f"SELECT *, {literal(p.display)} AS _source_file"
               f"{'' if p.numbered else ', rowid + 1 AS _row_number'} FROM {ident(p.table)}"
               for p in group.parts]
    return " UNION ALL BY NAME ".join(selects)


def write_version(con, group: Group, folder: Path, *, version: str, run_id: str, fingerprint: str,
                  jsonl: bool, view: str) -> dict:
    """Write ``group`` as a new version in ``folder``; return its record (``schema.json``)."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(view)} AS {_union(group)}")
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {ident(view)}").fetchall()}
    columns = [c for c in types if c not in INTERNAL]
    plans = settled_plans(types, columns, {} if group.types else _decided(group, columns))
    undecided = [c for c in columns if c not in plans]
    prepared, source = f"{view}_clean", ident(view)
    if undecided:  # text columns still to type: clean them once, count their readings
        prepare(con, view, prepared, undecided)
        source = ident(prepared)
        plans |= plan_columns(con, prepared, undecided, any(p.european for p in group.parts), group.types)
    fails = {p.column: f"({p.clean} IS NOT NULL AND {p.expr} IS NULL)" for p in plans.values() if p.failed}
    any_fail = " OR ".join(fails.values()) or "false"

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    originals = {c: sorted({p.originals.get(c, c) for p in group.parts if c in p.columns}) for c in columns}
    metadata = json.dumps({"table": group.name, "version": version, "original_names": originals})
    select = ", ".join([*(f"{plans[c].expr} AS {ident(c)}" for c in columns), *map(ident, INTERNAL)])
    con.execute(f"COPY (SELECT {select} FROM {source} WHERE NOT ({any_fail})) TO "
                f"{literal(tmp / 'data.parquet')} (FORMAT parquet, COMPRESSION zstd, "
                f"KV_METADATA {{gristmill: {literal(metadata)}}})")
    quarantined = _write_quarantine(con, group, source, columns, plans, fails, any_fail,
                                    tmp / "quarantine.parquet")
    if jsonl:
        con.execute(f"COPY (SELECT * FROM read_parquet({literal(tmp / 'data.parquet')})) TO "
                    f"{literal(tmp / 'data.jsonl')} (FORMAT json)")
    record = _record(con, group, tmp / "data.parquet", columns, plans, fails, source, originals)
    record.update({"name": group.name, "version": version, "run_id": run_id, "fingerprint": fingerprint,
                   "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "quarantined_rows": quarantined, "path": str(folder / "data.parquet"),
                   "quarantine_path": str(folder / "quarantine.parquet")})
    (tmp / "schema.json").write_text(json.dumps(record, indent=2, default=str))
    lineage = [{"table_name": group.name, "version": version, "run_id": run_id, **s} for s in record["sources"]]
    (tmp / "lineage.jsonl").write_text("".join(json.dumps(row, default=str) + "\n" for row in lineage))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    con.execute(f"DROP TABLE IF EXISTS {ident(prepared)}")
    con.execute(f"DROP VIEW {ident(view)}")
    return record


def _decided(group: Group, columns: list[str]) -> dict[str, str]:
    """Columns every part holding them has already typed (by a typed read), with the reading."""
    out = {}
    for col in columns:
        holders = [p for p in group.parts if col in p.columns]
        if holders and all(col in p.decided for p in holders):
            out[col] = holders[0].decided[col]
    return out


def _write_quarantine(con, group: Group, source: str, columns: list[str], plans: dict[str, Plan],
                      fails: dict[str, str], any_fail: str, path: Path) -> int:
    con.execute(f"CREATE OR REPLACE TEMP TABLE _q ({QUARANTINE_COLUMNS})")
    rejects: list[Reject] = [r for p in group.parts for r in p.rejects]
    if rejects:
        import pyarrow as pa

        con.register("_rejects", pa.table({
            "file": pa.array([r.file for r in rejects], pa.string()),
            "line": pa.array([r.line for r in rejects], pa.int64()),
            "row_number": pa.array([r.row for r in rejects], pa.int64()),
            "raw": pa.array([r.raw for r in rejects], pa.string()),
            "reason": pa.array([r.reason for r in rejects], pa.string())}))
        con.execute("INSERT INTO _q SELECT * FROM _rejects")
        con.unregister("_rejects")
    if fails:
        reasons = ", ".join(
            f"CASE WHEN {cond} THEN {literal(col + ': ')} || to_json({ident(col)})::VARCHAR || "
            f"{literal(' is not ' + _KIND_WORDS.get(plans[col].kind, plans[col].kind) + ' (' + plans[col].interpretation + ')')} END"
            for col, cond in fails.items())
        raw = "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {ident(c)}" for c in columns) + "))::VARCHAR"
        by_line = [p.display for p in group.parts if p.row_label == "line"]
        line_files = ", ".join(literal(d) for d in by_line) or "NULL"
        con.execute(f"INSERT INTO _q SELECT _source_file, "
                    f"CASE WHEN _source_file IN ({line_files}) THEN _row_number END, "
                    f"CASE WHEN _source_file IN ({line_files}) THEN NULL ELSE _row_number END, "
                    f"{raw}, concat_ws('; ', {reasons}) FROM {source} WHERE {any_fail}")
    count = con.execute("SELECT count(*) FROM _q").fetchall()[0][0]
    con.execute(f"COPY (SELECT * FROM _q ORDER BY file, coalesce(line, row_number)) TO {literal(path)} "
                "(FORMAT parquet, COMPRESSION zstd)")
    con.execute("DROP TABLE _q")
    return count


def _record(con, group: Group, data: Path, columns: list[str], plans: dict[str, Plan],
            fails: dict[str, str], source: str, originals: dict[str, list[str]]) -> dict:
    written = f"read_parquet({literal(data)})"
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {written}").fetchall()}
    stats = ", ".join(f"count(*) - count({ident(c)}), approx_count_distinct({ident(c)})" for c in columns)
    row = con.execute(f"SELECT count(*){', ' + stats if stats else ''} FROM {written}").fetchall()[0]
    failed: dict[str, tuple[int, list]] = {}
    if fails:
        parts = ", ".join(f"count(*) FILTER (WHERE {cond}), "
                          f"(list(DISTINCT {ident(col)}) FILTER (WHERE {cond}))[1:5]"
                          for col, cond in fails.items())
        got = con.execute(f"SELECT {parts} FROM {source}").fetchall()[0]
        for i, col in enumerate(fails):
            failed[col] = (got[2 * i], [str(v) for v in (got[2 * i + 1] or [])])
    records = []
    for i, col in enumerate(columns):
        count, examples = failed.get(col, (0, []))
        records.append(ColumnRecord(
            name=col, original_names=originals[col], type=types[col], nulls=row[1 + 2 * i],
            distinct=row[2 + 2 * i], interpretation=plans[col].interpretation, failed=count,
            failed_examples=examples).model_dump())
    sources = [SourceRecord(path=p.display, size=p.file.size, sha256=p.file.sha256, reader=p.reader,
                            notes={k: v for k, v in {**p.file.notes, **p.notes}.items()
                                   if isinstance(v, (str, int, float, bool)) or v is None},
                            rows=p.input_rows).model_dump() for p in group.parts]
    return {"rows": row[0], "columns": records, "sources": sources,
            "input_rows": sum(p.input_rows for p in group.parts)}
