"""Delimited text (CSV, TSV, ``;``-separated...) read by DuckDB's ``read_csv``, every value as text.

The dialect is sniffed here from a sample, because DuckDB's own sniffer stumbles over title rows
above the header (duckdb#11840): each candidate delimiter is tried with Python's csv parser and the
one giving the most regular grid wins; the header is found by :func:`ingestion.layout.find_layout`.
DuckDB then reads the whole file with that dialect, streaming and in parallel, and keeps every line
it cannot parse (wrong field count, bad quoting) in its rejects table, which becomes quarantine.
If more than half the lines are rejected, DuckDB's own sniffer is tried as a fallback and the
result with fewer rejects wins. The encoding is decided from the whole file
(:mod:`ingestion.readers.textlines`); a file that is not clean UTF-8 is first copied, streaming, to
UTF-8, each line that does not decode (or holds a NUL byte) replaced by a line DuckDB rejects, so
that it is quarantined in its place with its own bytes and reason. Text that is not a table
(prose: :func:`ingestion.layout.not_tabular`) is skipped with its reason; a header over
:data:`~ingestion.readers.MAX_COLUMNS` columns is refused before it is read.

Large files (:data:`TYPED_BYTES` and up) try a typed read first: the first
:data:`SAMPLE_RECORDS` records are read as text and typed by :mod:`ingestion.infer`; when every
column comes out as text or as a type DuckDB's own casts read the same way (plain integers and
decimals, ISO dates and timestamps, true/false words), the file is read once with those types. A
value that then fails its type (a later ``NA`` in an integer column, say) makes DuckDB reject it,
and the file is read again the exact way: as text, typed from the whole column. Such a file is not
loaded here but streamed (:class:`Stream`): the write's ``COPY`` reads it once, straight to Parquet,
while threads hash it and check it whole (clean UTF-8, one line per record).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gristmill.sql import ident, literal
from ingestion.detect import SAMPLE_BYTES, head
from ingestion.discover import InputFile, worker
from ingestion.layout import find_layout, not_tabular
from ingestion.names import column_names
from ingestion.readers import MAX_COLUMNS, RawPart, Reject, TooWide
from ingestion.readers.textlines import TextPlan, head_text, plan_text, write_utf8

TYPED_BYTES = 16 * 1024 * 1024
SAMPLE_RECORDS = 20_000
DELIMITERS = [",", ";", "\t", "|"]
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SAMPLE_ROWS = 500


def read_delimited(con, file: InputFile, prefix: str, scratch: Path, *, stream: bool = True,
                   attempt_typed: bool = True) -> list[RawPart]:
    """Read ``file`` (module docstring). With ``stream``, a file that takes the typed read is not
    loaded here: its part is a view over ``read_csv`` (:class:`Stream`) that the write reads once;
    ``attempt_typed=False`` skips the typed read (the exact way, all text)."""
    stem = file.local.stem if file.member is None else Path(file.member).stem
    large = file.size >= TYPED_BYTES and not file.forced_types and attempt_typed
    # a large file whose first bytes are clean UTF-8 is taken to be clean throughout: the whole-file
    # check runs beside the single pass (Stream.settle), which a file that is not clean undoes
    speculated = stream and large and _clean_head(file.local, file.encoding)
    plan = _clean_plan(file.encoding) if speculated else plan_text(file.local, file.encoding)
    notes: dict = {"encoding": plan.note or plan.encoding}
    path = file.local
    if plan.wide:  # UTF-16/32: transcoded whole first, then read like clean UTF-8
        path = scratch / f"{prefix}.utf8.csv"
        write_utf8(file.local, plan, path, marker="")
    text = _sample_text(path) if plan.clean_utf8 or plan.wide else head_text(path, plan, SAMPLE_BYTES)
    delim, rows, starts = _sniff(text)
    layout = find_layout(rows)
    if layout is None:
        return [RawPart(file, "", stem, [], {}, "duckdb.read_csv", 0, skipped="no rows",
                        notes={**notes, "empty": True})]
    if layout.width > MAX_COLUMNS:
        least = "at least " if "\n" not in text else ""
        raise TooWide(f"{least}{layout.width:,} columns: more than the {MAX_COLUMNS:,} a table may have")
    problem = not_tabular(rows, layout)
    if problem:
        return [RawPart(file, "", stem, [], {}, "duckdb.read_csv", 0, skipped=problem)]
    if not plan.clean_utf8 and not plan.wide:
        path = scratch / f"{prefix}.utf8.csv"
        write_utf8(file.local, plan, path, marker=(delim + "\x01") * (layout.width + 1))
    header = [c.strip() for c in rows[layout.header_index]] if layout.has_header else []
    width = layout.width
    names = column_names(header + [""] * (width - len(header)) if header else [""] * width)
    originals = dict(zip(names, header)) if header else {}
    skip = starts[layout.header_index]
    notes.update({"delimiter": _NAMES.get(delim, delim), "header": layout.has_header,
                  "title_rows_skipped": len(layout.title_rows(rows))})
    if layout.title_rows(rows):
        notes["title_rows"] = " | ".join(layout.title_rows(rows))[:200]
    table = f"{prefix}_raw"
    typed = None
    if large:
        native = _typed_plan(con, path, names, delim, skip, layout.has_header, prefix)
        if native is None and speculated:  # read the exact way, with the encoding decided first
            return read_delimited(con, file, prefix, scratch, stream=False)
        if native is not None and stream:  # read later, once, by the write's COPY (class Stream)
            notes["types"] = f"from the first {SAMPLE_RECORDS:,} records, read natively by DuckDB"
            redo = _redo(con, file, prefix, scratch)
            tag = f"{prefix}_w"
            source = _read_sql(path, names, native[0], delim, skip, layout.has_header, tag)
            con.execute(f"CREATE VIEW {ident(table)} AS SELECT *, row_number() OVER () AS _row_number "
                        f"FROM {source}")
            checks = worker("checks").submit(_whole_file, path)  # beside the COPY, in a thread
            deferred = Stream(source, tag, path, skip + int(layout.has_header), plan, redo, checks,
                              speculated)
            return [RawPart(file, table, stem, names, originals, "duckdb.read_csv", 0, [], notes,
                            european=delim == ";", row_label="record", numbered=True,
                            decided=native[1], stream=deferred)]
        if native is not None:
            typed = _typed_load(con, path, table, names, native, file.display, delim, skip,
                                layout.has_header, prefix)
    if typed is not None:
        accepted, rejects, interpretations = typed
        notes["types"] = f"from the first {SAMPLE_RECORDS:,} records, read natively by DuckDB"
    else:
        interpretations = {}
        accepted, rejects = _load(con, path, table, names, delim, skip, layout.has_header, file.display,
                                  f"{prefix}_a")
    if typed is None and accepted and len(rejects) > max(10, accepted):
        fallback = _duckdb_sniffed(con, path, f"{prefix}_b", file.display)
        if fallback is not None and len(fallback[2]) < len(rejects):
            con.execute(f"DROP TABLE {ident(table)}")
            con.execute(f"ALTER TABLE {ident(fallback[0])} RENAME TO {ident(table)}")
            names, originals, rejects = fallback[1], fallback[3], fallback[2]
            accepted = con.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0]
            notes["dialect"] = "duckdb sniffer (fallback)"
    european = delim == ";"
    rejects = [_relabel(r, plan) for r in rejects]
    if rejects:  # else the table's rowid gives the record numbers (see write._union)
        _number(con, table, [r.row for r in rejects if r.row is not None])
    offset = skip + int(layout.has_header) if "dialect" not in notes and _one_line_per_record(path) else None
    return [RawPart(file, table, stem, names, originals, "duckdb.read_csv", accepted + len(rejects), rejects, notes,
                    european=european, row_label="record", numbered=bool(rejects),
                    decided=interpretations, line_offset=offset)]


@dataclass
class Stream:
    """A typed read not run yet: the part's table is a view over ``read_csv`` numbering the records
    in file order (``row_number() OVER ()``, which DuckDB keeps in scan order with several threads),
    so the write's ``COPY`` to Parquet is the file's single pass. Afterwards :meth:`settle` collects
    what DuckDB rejected; a value that failed its type sends the file back to the exact read
    (:meth:`materialize` with ``exact``), as the typed read does when it loads a staging table."""

    source: str  # the read_csv call
    tag: str  # its rejects tables: <tag>_errors, <tag>_scans
    path: Path
    before_data: int  # lines above the first record (title rows, header)
    plan: TextPlan
    redo: Callable[[bool], RawPart]  # read the file again into a staging table (typed read or not)
    checks: Any = None  # a Future of :func:`_whole_file`: (clean UTF-8, one line per record)
    speculated: bool = False  # the file was taken to be clean UTF-8 from its first bytes

    def settle(self, con, part: RawPart, accepted: int) -> str:
        """After the single pass wrote ``accepted`` rows: record its rejects on ``part`` and return
        ""; else why the rows written are not the file's and it must be read again: "encoding" (it
        is not clean UTF-8 after all) or "types" (a value failed its type)."""
        clean, one_line = self.checks.result()
        if self.speculated and not clean:
            return "encoding"
        if cast_errors(con, self.tag):
            return "types"
        part.rejects = [_relabel(r, self.plan)
                        for r in _rejects(con, self.tag, part.display, self.path, self.before_data)]
        part.input_rows = accepted + len(part.rejects)
        part.line_offset = self.before_data if one_line else None
        part.stream = None
        return ""

    def materialize(self, con, part: RawPart, exact: bool = False) -> None:
        """Load the file into a staging table after all (the part is read with others, or ``exact``:
        its typed pass failed); ``part`` becomes what the reader returns without streaming."""
        con.execute(f"DROP VIEW IF EXISTS {ident(part.table)}")
        self.checks.cancel()
        fresh = self.redo(not exact)
        for item in fields(RawPart):
            setattr(part, item.name, getattr(fresh, item.name))


def _redo(con, file: InputFile, prefix: str, scratch: Path) -> Callable[[bool], RawPart]:
    def again(attempt_typed: bool) -> RawPart:
        (part,) = read_delimited(con, file, prefix, scratch, stream=False, attempt_typed=attempt_typed)
        return part
    return again


def shifts(rejected: list[int]):
    """An Arrow table (cut, shift): accepted record k (counted among accepted ones, in file order)
    has the number k + shift of the last cut below k, rejected records counted."""
    import pyarrow as pa

    ranks: dict[int, int] = {}
    for rank, number in enumerate(sorted(rejected), start=1):
        ranks[number - rank] = rank  # accepted records numbered above this had `rank` rejects before
    return pa.table({"cut": pa.array(list(ranks), pa.int64()), "shift": pa.array(list(ranks.values()), pa.int64())})


def _clean_head(path: Path, guess: str | None) -> bool:
    """The first bytes are UTF-8 (a character cut at the end aside) with no NUL byte."""
    if codecs.lookup(guess or "utf-8").name.startswith(("utf-16", "utf-32")):
        return False
    raw = head(path, SAMPLE_BYTES)
    try:
        codecs.getincrementaldecoder("utf-8")(errors="strict").decode(raw, final=False)
    except UnicodeDecodeError:
        return False
    return b"\x00" not in raw


def _clean_plan(guess: str | None) -> TextPlan:
    """What :func:`~ingestion.readers.textlines.plan_text` decides for a clean UTF-8 file."""
    return TextPlan("utf-8-sig" if guess == "utf-8-sig" else "utf-8", clean_utf8=True)


def _whole_file(path: Path) -> tuple[bool, bool]:
    """One read: is the file clean UTF-8 with no NUL byte (what ``plan_text`` calls clean), and does
    every record lie on one line (no quote character, no blank line: :func:`_one_line_per_record`)?"""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    clean, one_line, tail = True, True, b""
    with open(path, "rb") as handle:
        while (clean or one_line) and (block := handle.read(1 << 20)):
            if clean and b"\x00" in block:
                clean = False
            elif clean and not (block.isascii() and not decoder.getstate()[0]):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    clean = False
            if one_line:
                seam = tail + block[:2]
                one_line = not (b'"' in block or b"\n\n" in block or b"\n\r\n" in block
                                or b"\n\n" in seam or b"\n\r\n" in seam)
                tail = block[-2:]
    if clean:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            clean = False
    return clean, one_line


def _one_line_per_record(path: Path) -> bool:
    """No quote character and no blank line: record ``r`` lies on the line ``r`` below the header,
    so a value quarantined later can name its physical line too."""
    tail = b""
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            seam = tail + block[:2]  # a blank line across two blocks
            if (b'"' in block or b"\n\n" in block or b"\n\r\n" in block
                    or b"\n\n" in seam or b"\n\r\n" in seam):
                return False
            tail = block[-2:]
    return True


def _relabel(reject: Reject, plan: TextPlan) -> Reject:
    """A line blanked out for its bytes keeps its place; its reason and raw text are its own."""
    bad = plan.bad.get(reject.line) if reject.line is not None else None
    if bad is None:
        return reject
    return Reject(reject.file, bad.reason, bad.raw, line=reject.line, row=reject.row)


def _sample_text(path: Path) -> str:
    raw = head(path, SAMPLE_BYTES)
    text = raw.decode("utf-8", errors="ignore").lstrip("\ufeff")
    if len(raw) == SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # whole lines only
    return text


def _parse(text: str, delim: str) -> tuple[list[list[str]], list[int]]:
    """Rows of the sample and the physical line (0-based) where each starts."""
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream, delimiter=delim, quotechar='"', doublequote=True, strict=False)
    rows, starts = [], []
    line = 0
    try:
        for row in reader:
            rows.append(row)
            starts.append(line)
            line = reader.line_num
            if len(rows) >= SAMPLE_ROWS:
                break
    except csv.Error:
        pass
    return rows, starts


def _sniff(text: str) -> tuple[str, list[list[str]], list[int]]:
    best = None
    for delim in DELIMITERS:
        rows, starts = _parse(text, delim)
        layout = find_layout(rows)
        if layout is None:
            continue
        # regular grids first; then the one that needs fewer rows skipped as titles (a ';' file
        # whose values hold one ',' each is just as regular with ',' minus its header), then width
        score = (layout.width > 1, round(layout.consistency, 2), -layout.header_index, layout.width)
        if best is None or score > best[0]:
            best = (score, delim, rows, starts)
    if best is None:
        rows, starts = _parse(text, ",")
        return ",", rows, starts
    return best[1], best[2], best[3]


def _read_sql(path: Path, names: list[str], types: dict[str, str], delim: str, skip: int, header: bool,
              tag: str) -> str:
    columns = "{" + ", ".join(f"{literal(n)}: {literal(types.get(n, 'VARCHAR'))}" for n in names) + "}"
    options = (f"delim={literal(delim)}, quote='\"', escape='\"', header={str(header).lower()}, "
               f"skip={skip}, columns={columns}, auto_detect=false, store_rejects=true, "
               f"rejects_table={literal(tag + '_errors')}, rejects_scan={literal(tag + '_scans')}, "
               "strict_mode=true, null_padding=false, encoding='utf-8'")
    return f"read_csv({literal(path)}, {options})"


def _load(con, path: Path, table: str, names: list[str], delim: str, skip: int, header: bool,
          display: str, tag: str) -> tuple[int, list[Reject]]:
    # no row_number() here: a table keeps the file's order, so its rowid numbers the records for free
    con.execute(f"CREATE TABLE {ident(table)} AS SELECT * FROM "
                f"{_read_sql(path, names, {}, delim, skip, header, tag)}")
    accepted = con.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0]
    return accepted, _rejects(con, tag, display, path, skip + int(header))


_NATIVE_BOOL = {"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"}
_PLAIN = {"BIGINT": r"[+-]?(0|[1-9][0-9]*)", "DOUBLE": r"[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"}


def _typed_plan(con, path: Path, names: list[str], delim: str, skip: int, header: bool,
                prefix: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """Types decided on the first records (column -> DuckDB type, column -> interpretation); None
    when the file must be read as text (a column needs Gristmill's own parsing)."""
    from ingestion.infer import batches, plan_columns, prepare

    sample, clean = f"{prefix}_sample", f"{prefix}_sample_clean"
    con.execute(f"CREATE TEMP TABLE {ident(sample)} AS SELECT * FROM "
                f"{_read_sql(path, names, {}, delim, skip, header, prefix + '_s')} LIMIT {SAMPLE_RECORDS}")
    prepare(con, sample, clean, names)
    plans = plan_columns(con, clean, names, delim == ";")
    types, checks = {}, []
    for index, col in enumerate(names):
        plan = plans[col]
        native = plan.dtype if plan.kind != "text" else "VARCHAR"
        if plan.failed or native not in ("VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP",
                                         "TIMESTAMP WITH TIME ZONE"):
            return _drop(con, sample, clean)
        value = ident(f"__v{index}")
        if native in _PLAIN:
            odd = f"NOT regexp_full_match({value}, {literal(_PLAIN[native])})"
        elif native == "BOOLEAN":
            odd = f"lower({value}) NOT IN ({', '.join(literal(w) for w in sorted(_NATIVE_BOOL))})"
        elif native == "VARCHAR":
            odd = "false"
        else:
            odd = "false" if plan.interpretation.startswith("ISO 8601") else "true"
        if odd != "false":
            checks.append(f"count(*) FILTER (WHERE {value} IS NOT NULL AND ({odd}))")
        types[col] = native
    for batch in batches(checks):  # a value DuckDB's cast would read otherwise: read as text
        if any(con.execute(f"SELECT {', '.join(batch)} FROM {ident(clean)}").fetchall()[0]):
            return _drop(con, sample, clean)
    _drop(con, sample, clean)
    return types, {col: plans[col].interpretation for col in names}


def _typed_load(con, path: Path, table: str, names: list[str], native: tuple[dict[str, str], dict[str, str]],
                display: str, delim: str, skip: int, header: bool, prefix: str) -> tuple[int, list[Reject], dict[str, str]] | None:
    """Load the file once with the types of :func:`_typed_plan`; None when a value fails its type
    (the file must then be read as text)."""
    types, labels = native
    tag = f"{prefix}_t"
    con.execute(f"CREATE TABLE {ident(table)} AS SELECT * FROM "
                f"{_read_sql(path, names, types, delim, skip, header, tag)}")
    if cast_errors(con, tag):
        con.execute(f"DROP TABLE {ident(table)}")
        return None
    accepted = con.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0]
    return accepted, _rejects(con, tag, display, path, skip + int(header)), labels


def cast_errors(con, tag: str) -> int:
    """Values the typed read ``tag`` rejected because they did not fit their column's type."""
    return con.execute(f"SELECT count(*) FROM {ident(tag + '_errors')} "
                       "WHERE error_type::VARCHAR = 'CAST'").fetchall()[0][0]


def _drop(con, sample: str, clean: str) -> None:
    from ingestion.infer import release

    release(con, clean)  # first: a wide one is a view over the sample
    con.execute(f"DROP TABLE IF EXISTS {ident(sample)}")
    return None


def _rejects(con, tag: str, display: str, path: Path, before_data: int) -> list[Reject]:
    """Rejected records with their physical line in the file and their record number.

    DuckDB's ``line`` counts records (a quoted field may span lines), so the physical line is
    counted from the byte position of the record's start."""
    rows = con.execute(
        f"SELECT line, min(line_byte_position), any_value(csv_line), "
        f"string_agg(DISTINCT lower(replace(error_type::VARCHAR, '_', ' ')) || ': ' || error_message, '; ') "
        f"FROM {ident(tag + '_errors')} GROUP BY line ORDER BY line").fetchall()
    lines = _physical_lines(path, [int(r[1]) for r in rows if r[1] is not None])
    return [Reject(display, reason, (raw or "").strip("\r\n"), line=lines.get(position),
                   row=int(line) - before_data if line is not None else None)
            for line, position, raw, reason in rows]


def _physical_lines(path: Path, positions: list[int]) -> dict[int, int]:
    """1-based line number of each byte position, counting newlines in one streaming pass."""
    if not positions:
        return {}
    found, wanted = {}, sorted(set(positions))
    newlines, offset, i = 0, 0, 0
    with open(path, "rb") as handle:
        while i < len(wanted) and (block := handle.read(1 << 20)):
            while i < len(wanted) and wanted[i] < offset + len(block):
                found[wanted[i]] = newlines + block.count(b"\n", 0, wanted[i] - offset) + 1
                i += 1
            newlines += block.count(b"\n")
            offset += len(block)
    return found


def _number(con, table: str, rejected: list[int]) -> None:
    """Add ``_row_number``, the record's number in its file, rejected records counted: accepted
    record k (the table's rowid + 1, in file order) is the k-th number not taken by a rejected one."""
    con.register("_cuts", shifts(rejected))
    try:
        con.execute(f"CREATE TABLE {ident(table + '_n')} AS SELECT t.* EXCLUDE (_k), "
                    f"t._k + coalesce(c.shift, 0) AS _row_number "
                    f"FROM (SELECT *, rowid + 1 AS _k FROM {ident(table)}) t "
                    f"ASOF LEFT JOIN _cuts c ON t._k > c.cut ORDER BY t._k")  # the join loses the order
    finally:
        con.unregister("_cuts")
    con.execute(f"DROP TABLE {ident(table)}")
    con.execute(f"ALTER TABLE {ident(table + '_n')} RENAME TO {ident(table)}")


def _duckdb_sniffed(con, path: Path, tag: str, display: str):
    """Read with DuckDB's own sniffer (all text); None when it cannot."""
    import duckdb

    table = f"{tag}_raw"
    try:
        con.execute(f"CREATE TABLE {ident(table)} AS SELECT * "
                    f"FROM read_csv({literal(path)}, all_varchar=true, store_rejects=true, "
                    f"rejects_table={literal(tag + '_errors')}, rejects_scan={literal(tag + '_scans')})")
    except duckdb.Error:
        return None
    header = [r[0] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall() if r[0] != "_row_number"]
    names = column_names(header)
    for old, new in zip(header, names):
        if old != new:
            con.execute(f"ALTER TABLE {ident(table)} RENAME {ident(old)} TO {ident(new)}")
    return table, names, _rejects(con, tag, display, path, 1), dict(zip(names, header))
