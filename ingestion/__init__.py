"""Ingestion: messy files in, clean typed tables out, every row accounted for.

``ingest(sources, project=..., lake_dir=..., catalog=...)`` reads every file of the sources (files,
folders, globs), whatever its format, and writes one table per logical dataset:

- **Formats** are detected from content, not names: delimited text in any dialect and encoding,
  gzip/bz2/xz/zstd files, zip archives (each member), Excel workbooks (every sheet), JSON and JSON
  Lines (nested objects flattened, see :mod:`ingestion.readers.jsonfiles`), Parquet, Arrow/Feather,
  SQLite (each table). Everything else is listed as skipped, with the reason (prose included);
  every input file ends in exactly one of: a table, a bad file, a skipped file.
- **Tables**: files of one source with the same columns, folder and base name (``sales_2024_01``
  and ``sales_2024_02`` share ``sales``) are unioned into one table with a ``_source_file`` column;
  ``_row_number`` gives each row's place in its file. Column names are snake_case
  (:mod:`ingestion.names`); the original names are kept in the schema record and Parquet metadata.
- **Types** are inferred per column from the whole column of each file, with that file's dialect
  (:mod:`ingestion.infer`), and the typed columns unioned (:mod:`ingestion.union`); every
  interpretation is recorded.
- **Quarantine**: a row that cannot be parsed (bad quoting, wrong field count, invalid JSON, a
  value that does not fit its column's type, a line that does not decode in the file's encoding
  or holds a NUL byte, :mod:`ingestion.readers.textlines`) goes to the quarantine with file, line or row, raw
  text and reason. ``input_rows == ingested rows + quarantined_rows`` is checked on every run.
- **Versions and lineage**: each table version is a folder in the lake with zstd Parquet, its
  quarantine, a schema record and lineage (path, size, sha256 of every file). Unchanged files make
  no new version. Views in DuckDB are switched to new versions only at the end
  (:mod:`ingestion.catalog`).
"""

from ingestion.models import FileIssue, IngestReport, SourceSpec, TableReport
from ingestion.run import IngestError, ingest

__all__ = ["FileIssue", "IngestError", "IngestReport", "SourceSpec", "TableReport", "ingest"]
