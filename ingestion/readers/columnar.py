"""Typed columnar files: Parquet (read by DuckDB, streaming) and Arrow IPC / Feather (pyarrow).

Their column types are kept; only text columns go through type inference.
"""

from __future__ import annotations

from pathlib import Path

from gristmill.sql import ident, literal
from ingestion.discover import InputFile
from ingestion.names import column_names
from ingestion.readers import MAX_COLUMNS, RawPart, TooWide


def _stem(file: InputFile) -> str:
    return file.local.stem if file.member is None else Path(file.member).stem


def _renamed(con, table: str) -> tuple[list[str], dict[str, str]]:
    header = [r[0] for r in con.execute(f"DESCRIBE {ident(table)}").fetchall() if r[0] != "_row_number"]
    names = column_names(header)
    for old, new in zip(header, names):
        if old != new:
            con.execute(f"ALTER TABLE {ident(table)} RENAME {ident(old)} TO {ident(new)}")
    return names, dict(zip(names, header))


def _check_width(count: int) -> None:
    if count > MAX_COLUMNS:
        raise TooWide(f"{count:,} columns: more than the {MAX_COLUMNS:,} a table may have")


def read_parquet(con, file: InputFile, prefix: str, scratch: Path) -> list[RawPart]:
    import pyarrow.parquet as pq

    _check_width(len(pq.ParquetFile(str(file.local)).schema_arrow))
    table = f"{prefix}_pq"
    # the table keeps the file's order: its rowid numbers the rows (numbered=False)
    con.execute(f"CREATE TABLE {ident(table)} AS SELECT * FROM read_parquet({literal(file.local)})")
    names, originals = _renamed(con, table)
    rows = con.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0]
    return [RawPart(file, table, _stem(file), names, originals, "duckdb.read_parquet", rows,
                    numbered=False, decided=_text_decided(con, table, names, file))]


def _text_decided(con, table: str, names: list[str], file: InputFile) -> dict[str, str]:
    from ingestion.infer import decide_on_sample

    return {} if file.forced_types else decide_on_sample(con, table, names)


def read_arrow(con, file: InputFile, prefix: str, scratch: Path) -> list[RawPart]:
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc

    try:
        data = feather.read_table(str(file.local))
        reader = "pyarrow.feather"
    except (pa.ArrowInvalid, OSError):
        with pa.memory_map(str(file.local)) as source:
            data = ipc.open_stream(source).read_all()
        reader = "pyarrow.ipc stream"
    _check_width(data.num_columns)
    table = f"{prefix}_arrow"
    con.register("_arrow_in", data)
    try:
        con.execute(f"CREATE TABLE {ident(table)} AS SELECT * FROM _arrow_in")
    finally:
        con.unregister("_arrow_in")
    names, originals = _renamed(con, table)
    return [RawPart(file, table, _stem(file), names, originals, reader, data.num_rows,
                    numbered=False, decided=_text_decided(con, table, names, file))]
