"""Excel: a header above a column of formulas without saved values is kept and the cells reported;
sheets that are notes (prose) or empty are listed as skipped."""

from __future__ import annotations

import re
import zipfile

import pytest


def _workbook(path, rows, formulas, notes=None, strip_values=True):
    """An .xlsx like openpyxl writes it: formula cells with no cached value (``<v></v>``)."""
    import xlsxwriter

    raw = path.with_suffix(".raw.xlsx")
    book = xlsxwriter.Workbook(str(raw))
    sheet = book.add_worksheet("Data")
    sheet.write_row(0, 0, rows[0])
    for r, values in enumerate(rows[1:], start=1):
        sheet.write_row(r, 0, values)
        for c, formula in formulas(r):
            sheet.write_formula(r, c, formula)
    if notes:
        ns = book.add_worksheet("Notes")
        for r, line in enumerate(notes):
            ns.write(r, 0, line)
    book.close()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if strip_values and info.filename.startswith("xl/worksheets/"):
                data = re.sub(rb"(</f>)<v>[^<]*</v>", rb"\1<v></v>", data)
            dst.writestr(info, data)
    raw.unlink()
    return path.read_bytes()


@pytest.mark.parametrize("formula_columns", [[2], [1, 2], [0, 2]])
def test_formula_columns_without_values_keep_the_header_and_are_reported(formula_columns, tmp_path, make_files,
                                                                         ingest_run, sql):
    """Regression (issue 16): openpyxl-written formulas lost the header (column_1..) and the column."""
    header = ["Qty", "Price", "Total"]
    rows = [header] + [[None if c in formula_columns else float(r + c) for c in range(3)] for r in range(1, 6)]
    data = _workbook(tmp_path / "book.xlsx", rows,
                     lambda r: [(c, f"=A{r + 1}*2+{c}") for c in formula_columns])
    report = ingest_run(make_files({"book.xlsx": data}))
    table = report.tables[0]
    assert list(table.columns) == ["qty", "price", "total"]  # the header, every column
    assert table.rows == 5
    (warning,) = report.warnings
    assert warning.path == "book.xlsx[Data]"
    assert warning.reason.startswith(f"{5 * len(formula_columns)} formula cell(s) have no saved value")
    for c in formula_columns:
        assert f"{'ABC'[c]} ({header[c]})" in warning.reason


def test_formulas_with_saved_values_give_no_warning(tmp_path, make_files, ingest_run):
    rows = [["a", "b"]] + [[r, None] for r in range(1, 4)]
    data = _workbook(tmp_path / "ok.xlsx", rows, lambda r: [(1, f"=A{r + 1}+1")], strip_values=False)
    report = ingest_run(make_files({"ok.xlsx": data}))
    assert report.warnings == [] and list(report.tables[0].columns) == ["a", "b"]


def test_a_notes_sheet_is_skipped_with_its_reason(tmp_path, make_files, ingest_run, tables):
    """Regression (issue 16): an Excel notes sheet became a 0-row table named after its first line."""
    rows = [["id", "amount"]] + [[r, r * 1.5] for r in range(1, 6)]
    notes = ["Notes", "These figures come from the monthly ERP export of the shop.",
             "Amounts are in euro and include the value added tax of the month."]
    data = _workbook(tmp_path / "book.xlsx", rows, lambda r: [], notes=notes)
    report = ingest_run(make_files({"book.xlsx": data}))
    assert list(tables(report)) == ["book"] and tables(report)["book"].rows == 5
    assert [(s.path, s.reason.split(":")[0]) for s in report.skipped_files] == [("book.xlsx[Notes]", "not tabular")]
