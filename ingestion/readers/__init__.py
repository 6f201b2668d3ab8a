"""Readers: one per kind of file, each loading a file into DuckDB staging tables.

A reader takes the staging connection, an :class:`~ingestion.discover.InputFile`, a prefix for
its staging tables and a scratch folder for intermediate files, and returns one :class:`RawPart` per dataset found in the file (a workbook's
sheets, a database's tables, a JSON file and its child tables of nested arrays). Every staging
table has snake_case columns plus ``_row_number`` (the record's place in its source: line, sheet
row or ordinal), or keeps the source's order so that its ``rowid`` gives it (``numbered=False``). Rows a reader cannot parse come back as ``rejects`` for the quarantine. A part
with no ``table`` is listed as skipped with its ``skipped`` reason; a reader that finds nothing at
all makes the file skipped ("no data"); a reader that raises makes it a bad file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion.discover import InputFile


# Only absurd widths are refused (a header of 200,000 fields, JSON with a key per record): wide
# tables are typed and written in batches of columns (ingestion.infer.BATCH); measured (Dec 2026,
# 2 cores, the default 2 GB staging limit) 2,000 columns x 10,000 rows ingest in about a minute at
# 1.1 GB RSS (docs/ingestion.md, Width). Wider files are refused before they are read.
MAX_COLUMNS = 10_000


class TooWide(ValueError):
    """A file with more columns than :data:`MAX_COLUMNS`: refused before it fills memory."""


@dataclass
class Reject:
    """A record that could not be parsed: where it is, its raw text, why."""

    file: str
    reason: str
    raw: str = ""
    line: int | None = None
    row: int | None = None


@dataclass
class RawPart:
    """One dataset loaded into staging table ``table`` from ``file``."""

    file: InputFile
    table: str
    stem: str
    columns: list[str]
    originals: dict[str, str]
    reader: str
    input_rows: int
    rejects: list[Reject] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    european: bool = False
    display: str = ""
    row_label: str = "row"
    numbered: bool = True  # False: the table has no _row_number; its rowid + 1 is the number
    decided: dict[str, str] = field(default_factory=dict)  # column -> interpretation, typed already
    line_offset: int | None = None  # delimited text: a record's physical line is its number + this
    skipped: str = ""  # with no ``table``: why this is not a table (listed under skipped files)
    warnings: list[str] = field(default_factory=list)  # surfaced in the report (e.g. formulas without values)
    # a read not run yet (ingestion.readers.delimited.Stream): ``table`` is a view over the file and
    # the write's COPY is its single pass; ``input_rows`` and ``rejects`` are known after it
    stream: Any = None

    def __post_init__(self) -> None:
        self.display = self.display or self.file.display


Reader = Callable[[Any, InputFile, str, Path], list[RawPart]]


def registry() -> dict[str, Reader]:
    """Readers by format name (imported lazily: each pulls in its own libraries)."""
    from ingestion.readers.columnar import read_arrow, read_parquet
    from ingestion.readers.delimited import read_delimited
    from ingestion.readers.excel import read_excel
    from ingestion.readers.jsonfiles import read_json, read_jsonl
    from ingestion.readers.sqlite import read_sqlite

    return {"csv": read_delimited, "excel": read_excel, "json": read_json, "jsonl": read_jsonl,
            "parquet": read_parquet, "arrow": read_arrow, "sqlite": read_sqlite}


def reader_for(kind: str) -> Reader:
    readers = registry()
    if kind not in readers:
        raise KeyError(f"no reader for {kind!r} (readers: {', '.join(sorted(readers))})")
    return readers[kind]
