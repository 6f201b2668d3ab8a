"""Delimited text (CSV, TSV, ``;``-separated...) read by DuckDB's ``read_csv``, every value as text.

The dialect is sniffed here from a sample, because DuckDB's own sniffer stumbles over title rows
above the header (duckdb#11840): each candidate delimiter is tried with Python's csv parser and the
one giving the most regular grid wins; the header is found by :func:`ingestion.layout.find_layout`.
DuckDB then reads the whole file with that dialect, streaming and in parallel, and keeps every line
it cannot parse (wrong field count, bad quoting) in its rejects table, which becomes quarantine.
If more than half the lines are rejected, DuckDB's own sniffer is tried as a fallback and the
result with fewer rejects wins. Files not in UTF-8 are first transcoded, streaming, to UTF-8.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

from gristmill.sql import ident, literal
from ingestion.detect import SAMPLE_BYTES, head
from ingestion.discover import InputFile
from ingestion.layout import find_layout
from ingestion.names import column_names
from ingestion.readers import RawPart, Reject

DELIMITERS = [",", ";", "\t", "|"]
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SAMPLE_ROWS = 500


def read_delimited(con, file: InputFile, prefix: str, scratch: Path) -> list[RawPart]:
    notes: dict = {"encoding": file.encoding or "utf-8"}
    path = file.local
    if (file.encoding or "utf-8") not in ("utf-8", "utf-8-sig", "ascii"):
        path = scratch / f"{prefix}.utf8.csv"
        notes["encoding"] = _transcode(file.local, file.encoding or "latin-1", path)
    text = _sample_text(path)
    delim, rows, starts = _sniff(text)
    layout = find_layout(rows)
    if layout is None:
        return [RawPart(file, "", file.local.stem, [], {}, "duckdb.read_csv", 0,
                        notes={**notes, "empty": True})]
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
    accepted, rejects = _load(con, path, table, names, delim, skip, layout.has_header, file.display,
                              f"{prefix}_a")
    if accepted and len(rejects) > max(10, accepted):
        fallback = _duckdb_sniffed(con, path, f"{prefix}_b", file.display)
        if fallback is not None and len(fallback[2]) < len(rejects):
            con.execute(f"DROP TABLE {ident(table)}")
            con.execute(f"ALTER TABLE {ident(fallback[0])} RENAME TO {ident(table)}")
            names, originals, rejects = fallback[1], fallback[3], fallback[2]
            accepted = con.execute(f"SELECT count(*) FROM {ident(table)}").fetchone()[0]
            notes["dialect"] = "duckdb sniffer (fallback)"
    european = delim == ";"
    return [RawPart(file, table, file.local.stem if file.member is None else Path(file.member).stem,
                    names, originals, "duckdb.read_csv", accepted + len(rejects), rejects, notes,
                    european=european, row_label="record")]


def _transcode(path: Path, encoding: str, target: Path) -> str:
    """Stream ``path`` from ``encoding`` into UTF-8 at ``target``; returns the encoding used.

    A byte the detected encoding cannot decode further into the file than the sample reached
    makes the whole file read as Latin-1 instead (which decodes every byte), and says so."""
    for used in (encoding, "latin-1"):
        decoder = codecs.getincrementaldecoder(used)(errors="strict")
        try:
            with open(path, "rb") as src, open(target, "w", encoding="utf-8", newline="") as dst:
                while block := src.read(1 << 20):
                    dst.write(decoder.decode(block))
                dst.write(decoder.decode(b"", final=True))
            return used if used == encoding else f"latin-1 (not valid {encoding} throughout)"
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")


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
        score = (layout.width > 1, round(layout.consistency, 2), layout.width)
        if best is None or score > best[0]:
            best = (score, delim, rows, starts)
    if best is None:
        rows, starts = _parse(text, ",")
        return ",", rows, starts
    return best[1], best[2], best[3]


def _load(con, path: Path, table: str, names: list[str], delim: str, skip: int, header: bool,
          display: str, tag: str) -> tuple[int, list[Reject]]:
    columns = "{" + ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names) + "}"
    options = (f"delim={literal(delim)}, quote='\"', escape='\"', header={str(header).lower()}, "
               f"skip={skip}, columns={columns}, auto_detect=false, store_rejects=true, "
               f"rejects_table={literal(tag + '_errors')}, rejects_scan={literal(tag + '_scans')}, "
               "strict_mode=true, null_padding=false, encoding='utf-8'")
    con.execute(f"CREATE TABLE {ident(table)} AS SELECT *, row_number() OVER () AS _row_number "
                f"FROM read_csv({literal(path)}, {options})")
    accepted = con.execute(f"SELECT count(*) FROM {ident(table)}").fetchone()[0]
    return accepted, _rejects(con, tag, display)


def _rejects(con, tag: str, display: str) -> list[Reject]:
    rows = con.execute(
        f"SELECT line, any_value(csv_line), string_agg(DISTINCT lower(replace(error_type::VARCHAR, '_', ' '))"
        f" || ': ' || error_message, '; ') FROM {ident(tag + '_errors')} GROUP BY line ORDER BY line"
    ).fetchall()
    return [Reject(display, reason, (raw or "").strip("\r\n"), line=int(line)) for line, raw, reason in rows]


def _duckdb_sniffed(con, path: Path, tag: str, display: str):
    """Read with DuckDB's own sniffer (all text); None when it cannot."""
    import duckdb

    table = f"{tag}_raw"
    try:
        con.execute(f"CREATE TABLE {ident(table)} AS SELECT *, row_number() OVER () AS _row_number "
                    f"FROM read_csv({literal(path)}, all_varchar=true, store_rejects=true, "
                    f"rejects_table={literal(tag + '_errors')}, rejects_scan={literal(tag + '_scans')})")
    except duckdb.Error:
        return None
    header = [r[0] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall() if r[0] != "_row_number"]
    names = column_names(header)
    for old, new in zip(header, names):
        if old != new:
            con.execute(f"ALTER TABLE {ident(table)} RENAME {ident(old)} TO {ident(new)}")
    return table, names, _rejects(con, tag, display), dict(zip(names, header))
