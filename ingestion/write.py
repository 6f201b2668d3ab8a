"""Writing one table version: union of its files, types applied, Parquet + quarantine + records.

A version folder ``<lake>/<table>/<version>/`` holds ``data.parquet`` (zstd), ``quarantine.parquet``
(rows that could not be parsed, with file, line or row, raw text and reason), ``schema.json`` (the
schema record: types, null and distinct counts, interpretations, failed examples, lineage), and
``data.jsonl`` on request. It is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from gristmill.sql import ident, literal
from ingestion.models import ColumnRecord, SourceRecord
from ingestion.readers import RawPart, Reject
from ingestion.union import INTERNAL, TypedPart, drop, reconcile, select, type_part
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


def write_version(con, group: Group, folder: Path, *, version: str, run_id: str,
                  fingerprint: Callable[[], str], jsonl: bool, view: str) -> dict:
    """Write ``group`` as a new version in ``folder``; return its record (``schema.json``).

    Each part is typed on its own and the typed columns are unioned (:mod:`ingestion.union`). A
    part alone in its group whose read was deferred (``part.stream``) is read by the COPY below, in
    one pass; parts read with others are loaded into staging tables first."""
    streamed = group.parts[0].stream if len(group.parts) == 1 else None
    if streamed is None:
        for part in group.parts:
            if part.stream is not None:
                part.stream.materialize(con, part)
    typed = [type_part(con, part, f"{view}_{i}", group.types) for i, part in enumerate(group.parts)]
    targets = reconcile(con, typed, group.types)
    columns = list(targets)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    originals = {c: sorted({p.originals.get(c, c) for p in group.parts if c in p.columns}) for c in columns}
    metadata = json.dumps({"table": group.name, "version": version, "original_names": originals})
    union = " UNION ALL ".join(select(t, columns, targets) for t in typed)
    options = f"FORMAT parquet, COMPRESSION zstd, KV_METADATA {{gristmill: {literal(metadata)}}}"
    written = con.execute(f"COPY ({union}) TO {literal(tmp / 'data.parquet')} ({options})").fetchall()[0][0]
    if streamed is not None:
        part = group.parts[0]
        again = streamed.settle(con, part, written)
        if again:  # not clean UTF-8 after all, or a value failed its type: read it as before
            drop(con, typed)
            shutil.rmtree(tmp)
            streamed.materialize(con, part, exact=again == "types")
            return write_version(con, group, folder, version=version, run_id=run_id,
                                 fingerprint=fingerprint, jsonl=jsonl, view=view)
        if part.rejects:
            _renumber(con, tmp / "data.parquet", [r.row for r in part.rejects if r.row is not None], options)
    quarantined = _write_quarantine(con, group, typed, tmp / "quarantine.parquet")
    if jsonl:
        con.execute(f"COPY (SELECT * FROM read_parquet({literal(tmp / 'data.parquet')})) TO "
                    f"{literal(tmp / 'data.jsonl')} (FORMAT json)")
    record = _record(con, group, tmp / "data.parquet", columns, targets, typed, originals)
    record.update({"name": group.name, "version": version, "run_id": run_id, "fingerprint": fingerprint(),
                   "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "quarantined_rows": quarantined, "path": str(folder / "data.parquet"),
                   "quarantine_path": str(folder / "quarantine.parquet")})
    (tmp / "schema.json").write_text(json.dumps(record, indent=2, default=str))
    lineage = [{"table_name": group.name, "version": version, "run_id": run_id, **s} for s in record["sources"]]
    (tmp / "lineage.jsonl").write_text("".join(json.dumps(row, default=str) + "\n" for row in lineage))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    drop(con, typed)
    return record


def _renumber(con, data: Path, rejected: list[int], options: str) -> None:
    """A single pass numbered the accepted records only: count the rejected ones in (rare: only a
    file with malformed lines pays this second pass, over its Parquet)."""
    from ingestion.readers.delimited import shifts

    staged = data.with_name("renumbered.parquet")
    con.register("_cuts", shifts(rejected))
    try:
        con.execute(f"COPY (SELECT d.* REPLACE (d._row_number + coalesce(c.shift, 0) AS _row_number) "
                    f"FROM read_parquet({literal(data)}) d ASOF LEFT JOIN _cuts c ON d._row_number > c.cut "
                    f"ORDER BY d._row_number) TO {literal(staged)} ({options})")
    finally:
        con.unregister("_cuts")
    staged.replace(data)


def _write_quarantine(con, group: Group, typed: list[TypedPart], path: Path) -> int:
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
    for t in typed:
        fails = t.fails()
        if not fails:
            continue
        plans = t.plans
        reasons = ", ".join(
            f"CASE WHEN {cond} THEN {literal(col + ': ')} || to_json({ident(col)})::VARCHAR || "
            f"{literal(' is not ' + _KIND_WORDS.get(plans[col].kind, plans[col].kind) + ' (' + plans[col].interpretation + ')')} END"
            for col, cond in fails.items())
        raw = "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {ident(c)}" for c in t.columns) + "))::VARCHAR"
        by_line = t.part.row_label == "line"
        line, row = ("_row_number", "NULL") if by_line else ("NULL", "_row_number")
        if t.part.line_offset is not None:
            line = f"_row_number + {int(t.part.line_offset)}"
        con.execute(f"INSERT INTO _q SELECT _source_file, {line}, {row}, {raw}, concat_ws('; ', {reasons}) "
                    f"FROM {t.source} WHERE {' OR '.join(fails.values())}")
    count = con.execute("SELECT count(*) FROM _q").fetchall()[0][0]
    con.execute(f"COPY (SELECT * FROM _q ORDER BY file, coalesce(line, row_number)) TO {literal(path)} "
                "(FORMAT parquet, COMPRESSION zstd)")
    con.execute("DROP TABLE _q")
    return count


def _record(con, group: Group, data: Path, columns: list[str], targets: dict[str, tuple[str, str]],
            typed: list[TypedPart], originals: dict[str, list[str]]) -> dict:
    written = f"read_parquet({literal(data)})"
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {written}").fetchall()}
    stats = ", ".join(f"count(*) - count({ident(c)}), approx_count_distinct({ident(c)})" for c in columns)
    row = con.execute(f"SELECT count(*){', ' + stats if stats else ''} FROM {written}").fetchall()[0]
    failed: dict[str, tuple[int, list]] = {}
    for t in typed:
        fails = t.fails()
        if not fails:
            continue
        parts = ", ".join(f"count(*) FILTER (WHERE {cond}), "
                          f"(list(DISTINCT {ident(col)}::VARCHAR) FILTER (WHERE {cond}))[1:5]"
                          for col, cond in fails.items())
        got = con.execute(f"SELECT {parts} FROM {t.source}").fetchall()[0]
        for i, col in enumerate(fails):
            count, examples = failed.get(col, (0, []))
            failed[col] = (count + got[2 * i], (examples + [str(v) for v in (got[2 * i + 1] or [])])[:5])
    records = []
    for i, col in enumerate(columns):
        count, examples = failed.get(col, (0, []))
        records.append(ColumnRecord(
            name=col, original_names=originals[col], type=types[col], nulls=row[1 + 2 * i],
            distinct=row[2 + 2 * i], interpretation=targets[col][1], failed=count,
            failed_examples=examples).model_dump())
    sources = [SourceRecord(path=p.display, size=p.file.size, sha256=p.file.sha256, reader=p.reader,
                            notes={k: v for k, v in {**p.file.notes, **p.notes}.items()
                                   if isinstance(v, (str, int, float, bool)) or v is None},
                            rows=p.input_rows).model_dump() for p in group.parts]
    return {"rows": row[0], "columns": records, "sources": sources,
            "input_rows": sum(p.input_rows for p in group.parts)}
