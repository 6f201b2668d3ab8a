"""What ingestion is asked to do and what it reports, as pydantic models."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FormatName = Literal["csv", "excel", "json", "jsonl", "parquet", "arrow", "sqlite"]
ColumnType = Literal["text", "integer", "decimal", "boolean", "date", "timestamp"]


class SourceSpec(BaseModel):
    """One input: a file, a folder (read recursively) or a glob."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="A file, a folder or a glob pattern.")
    name: str | None = Field(None, description="Table name (default: derived from the file names).")
    format: FormatName | None = Field(None, description="Force a reader instead of detecting it.")
    types: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Force a column's type (by its snake_case name), e.g. {zip_code: text}.",
    )


class FileIssue(BaseModel):
    """A file that could not be read (bad) or was not data (skipped), with the reason."""

    path: str
    reason: str


class SourceRecord(BaseModel):
    """Lineage of one input file of a table version."""

    path: str = Field(description="The file as the user named it (archive members: 'a.zip!/m.csv').")
    size: int = Field(description="Bytes of the file (or archive member) read.")
    sha256: str
    reader: str = Field(description="Reader that parsed it, e.g. 'duckdb.read_csv'.")
    notes: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="Every interpretation the reader chose (encoding, dialect...)."
    )
    rows: int = Field(description="Data rows the file held (ingested + quarantined).")


class ColumnRecord(BaseModel):
    """The schema record of one column."""

    name: str
    original_names: list[str] = Field(description="Header names in the source files.")
    type: str = Field(description="DuckDB type of the column in the lake.")
    nulls: int
    distinct: int = Field(description="Approximate count of distinct values.")
    interpretation: str = Field("", description="How text was read: decimal comma, day-first dates...")
    failed: int = Field(0, description="Values that did not parse (their rows are quarantined).")
    failed_examples: list[str] = Field(default_factory=list)


class TableReport(BaseModel):
    """One ingested table (a logical dataset: one or more files with the same schema)."""

    name: str
    rows: int
    columns: dict[str, str] = Field(description="Column name -> DuckDB type.")
    sources: list[str] = Field(description="Files the table was built from.")
    version: str
    changed: bool = Field(description="False when the sources were unchanged and the version kept.")
    quarantined_rows: int = 0
    path: str = Field("", description="Parquet file of this version.")


class IngestReport(BaseModel):
    """What one ingestion run did. ``input_rows == sum(rows) + quarantined_rows`` always holds."""

    project: str
    run_id: str
    tables: list[TableReport] = Field(default_factory=list)
    input_rows: int = 0
    quarantined_rows: int = 0
    bad_files: list[FileIssue] = Field(default_factory=list)
    skipped_files: list[FileIssue] = Field(default_factory=list)
    warnings: list[FileIssue] = Field(
        default_factory=list, description="Read, but with something the user should know (formula "
        "cells without a value, lines decoded by a fallback).")
    seconds: float = 0.0
