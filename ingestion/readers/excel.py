"""Excel workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods) read by fastexcel (calamine), every sheet.

Each sheet is loaded as text (cells as Excel shows their values, dates in ISO form) so that one
type inference serves every format and no cell is coerced to a missing value behind the user's
back. Title rows above the header are found by :func:`ingestion.layout.find_layout`; fully blank
rows are not records and are only counted; sheets without data are skipped.
"""

from __future__ import annotations

from pathlib import Path

from ingestion.discover import InputFile
from ingestion.layout import find_layout
from ingestion.names import column_names, snake
from ingestion.readers import RawPart
from ingestion.readers.staging import append_arrow, arrow_table

SAMPLE_ROWS = 200


def _trimmed(row: list) -> list[str]:
    cells = ["" if c is None else str(c) for c in row]
    while cells and not cells[-1].strip():
        cells.pop()
    return cells


def read_excel(con, file: InputFile, prefix: str, scratch: Path) -> list[RawPart]:
    import fastexcel

    workbook = fastexcel.read_excel(str(file.local))
    stem = file.local.stem if file.member is None else Path(file.member).stem
    parts = []
    for number, sheet_name in enumerate(workbook.sheet_names):
        sheet = workbook.load_sheet(number, header_row=None, dtypes="string")
        grid = sheet.to_arrow()
        if grid.num_rows == 0:
            continue
        columns = [grid.column(i).to_pylist() for i in range(grid.num_columns)]
        rows = [[col[r] for col in columns] for r in range(grid.num_rows)]
        layout = find_layout([_trimmed(r) for r in rows[:SAMPLE_ROWS]])
        if layout is None:
            continue
        start = layout.header_index + 1 if layout.has_header else layout.header_index
        header = [("" if c is None else str(c).strip()) for c in rows[layout.header_index]] \
            if layout.has_header else [""] * len(columns)
        body = rows[start:]
        keep = [i for i in range(len(columns))
                if header[i] or any(r[i] not in (None, "") for r in body)]
        header = [header[i] for i in keep]
        data, numbers, blank = [], [], 0
        for offset, row in enumerate(body):
            values = [row[i] if row[i] not in ("",) else None for i in keep]
            if all(v is None or not str(v).strip() for v in values):
                blank += 1
                continue
            data.append(values)
            numbers.append(start + offset + 1)  # the sheet's own 1-based row number
        names_ = column_names(header)
        table = f"{prefix}_s{number}"
        append_arrow(con, table, arrow_table(names_, data, numbers), created=False)
        notes = {"sheet": sheet_name, "header_row": layout.header_index + 1 if layout.has_header else None,
                 "title_rows_skipped": len(layout.title_rows(rows)), "blank_rows_skipped": blank}
        if layout.title_rows(rows):
            notes["title_rows"] = " | ".join(layout.title_rows(rows))[:200]
        parts.append(RawPart(file, table, f"{stem}__{snake(sheet_name)}", names_, dict(zip(names_, header)), "fastexcel",
                             len(data), notes=notes, display=f"{file.display}[{sheet_name}]",
                             row_label="sheet row"))
    if len(parts) == 1:
        parts[0].stem = stem  # one sheet with data: the table is named after the file
    return parts
