"""Excel workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods) read by fastexcel (calamine), every sheet.

Each sheet is loaded as text (cells as Excel shows their values, dates in ISO form) so that one
type inference serves every format and no cell is coerced to a missing value behind the user's
back. Title rows above the header are found by :func:`ingestion.layout.find_layout`; fully blank
rows are not records and are only counted; sheets without data, and sheets of prose (one column
of sentences: a notes sheet), are listed as skipped (``book.xlsx[Notes]``). Formula cells an
.xlsx holds without a saved value (files written by openpyxl and other libraries that do not
compute formulas) read as empty: the report warns, naming the cells and columns.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from ingestion.discover import InputFile
from ingestion.layout import find_layout, not_tabular
from ingestion.names import column_names, snake
from ingestion.readers import MAX_COLUMNS, RawPart, TooWide
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
    parts: list[RawPart] = []
    skipped: list[RawPart] = []
    missing = formulas_without_value(file.local)
    for number, sheet_name in enumerate(workbook.sheet_names):
        sheet = workbook.load_sheet(number, header_row=None, dtypes="string")
        grid = sheet.to_arrow()
        if grid.num_rows == 0:
            skipped.append(RawPart(file, "", stem, [], {}, "fastexcel", 0, skipped="an empty sheet",
                                   display=f"{file.display}[{sheet_name}]"))
            continue
        if grid.num_columns > MAX_COLUMNS:
            raise TooWide(f"sheet {sheet_name!r} has {grid.num_columns:,} columns: more than the "
                          f"{MAX_COLUMNS:,} a table may have")
        columns = [grid.column(i).to_pylist() for i in range(grid.num_columns)]
        rows = [[col[r] for col in columns] for r in range(grid.num_rows)]
        # every row as wide as the widest: a column empty below its header (formulas without a
        # saved value, say) must not make the header row look wider than the grid
        trimmed = [_trimmed(r) for r in rows[:SAMPLE_ROWS]]
        width = max((len(r) for r in trimmed), default=0)
        layout = find_layout([r + [""] * (width - len(r)) if r else r for r in trimmed])
        if layout is None:
            skipped.append(RawPart(file, "", stem, [], {}, "fastexcel", 0, skipped="an empty sheet",
                                   display=f"{file.display}[{sheet_name}]"))
            continue
        problem = not_tabular(trimmed, layout) if layout.width == 1 else ""
        if problem:
            skipped.append(RawPart(file, "", stem, [], {}, "fastexcel", 0, skipped=problem,
                                   display=f"{file.display}[{sheet_name}]"))
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
        part = RawPart(file, table, f"{stem}__{snake(sheet_name)}", names_, dict(zip(names_, header)),
                       "fastexcel", len(data), notes=notes, display=f"{file.display}[{sheet_name}]",
                       row_label="sheet row")
        cells = missing.get(sheet_name, [])
        if cells:
            part.notes["formula_cells_without_value"] = len(cells)
            part.warnings.append(_formula_warning(cells, header, keep))
        parts.append(part)
    if len(parts) == 1:
        parts[0].stem = stem  # one sheet with data: the table is named after the file
    return parts + skipped


def _formula_warning(cells: list[str], header: list[str], keep: list[int]) -> str:
    letters = sorted({c.rstrip("0123456789") for c in cells}, key=lambda c: (len(c), c))
    named = []
    for letter in letters[:5]:
        index = _column_index(letter)
        name = header[keep.index(index)] if index in keep and keep.index(index) < len(header) else ""
        named.append(f"{letter} ({name})" if name else letter)
    shown = ", ".join(cells[:5]) + (", ..." if len(cells) > 5 else "")
    return (f"{len(cells)} formula cell(s) have no saved value and read as empty ({shown}; column(s) "
            f"{', '.join(named)}): the workbook was written by a program that does not compute "
            "formulas (e.g. openpyxl); open and save it in Excel or LibreOffice to store their values")


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


_FORMULA_NO_VALUE = re.compile(
    rb'<c r="([A-Z]+[0-9]+)"[^>]*>\s*<f(?:\s[^>]*)?(?:/>|>[^<]*</f>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>')


def formulas_without_value(path: Path) -> dict[str, list[str]]:
    """Per sheet name, the cells of an .xlsx/.xlsm holding a formula but no saved value."""
    import xml.etree.ElementTree as ET

    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return {}
    out: dict[str, list[str]] = {}
    with archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" not in names or "xl/_rels/workbook.xml.rels" not in names:
            return {}
        ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
              "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships"}
        rels = {r.get("Id"): r.get("Target") for r in ET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))}
        for sheet in ET.fromstring(archive.read("xl/workbook.xml")).iterfind(".//m:sheet", ns):
            target = rels.get(sheet.get(f"{{{ns['r']}}}id") or "") or ""
            member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            if member not in names:
                continue
            xml = archive.read(member)
            if b"<f" not in xml:
                continue
            cells = [m.group(1).decode() for m in _FORMULA_NO_VALUE.finditer(xml)]
            if cells:
                out[sheet.get("name") or ""] = cells
    return out
