"""Delimited text: dialects, quoting, title rows, encodings, missing headers, bad field counts."""

from __future__ import annotations

import codecs


GERMAN = ["Müller", "Größe", "Ärger", "Jürgen", "Köln", "Düsseldorf", "Weiß", "Bär", "Öl", "Süß"]


def test_comma_semicolon_tab_and_pipe_are_sniffed(make_files, ingest_run, sql, schema, tables):
    files = {}
    for delim, stem in ((",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        lines = [delim.join(["id", "city", "score"])]
        lines += [delim.join([str(i), f"{stem} city {i}", str(i * 10)]) for i in range(1, 6)]
        files[f"{stem}.txt"] = "\n".join(lines) + "\n"
    report = ingest_run(make_files(files))
    assert report.input_rows == 20 and report.quarantined_rows == 0
    for stem in ("comma", "semicolon", "tab", "pipe"):
        assert tables(report)[stem].columns == {"id": "BIGINT", "city": "VARCHAR", "score": "BIGINT"}
        assert schema(report, stem)["sources"][0]["notes"]["delimiter"] == stem
        assert sql(f"SELECT city, score FROM p.{stem} WHERE id = 3") == [(f"{stem} city 3", 30)]


def test_semicolon_file_with_decimal_commas_in_every_row(make_files, ingest_run, sql):
    text = "artikel;preis\n" + "".join(f"Artikel {i};{i},50\n" for i in range(10))
    report = ingest_run(make_files({"preise.csv": text}))
    assert report.tables[0].columns == {"artikel": "VARCHAR", "preis": "DOUBLE"}
    assert sql("SELECT artikel, preis FROM p.preise WHERE preis > 8") == [("Artikel 8", 8.5), ("Artikel 9", 9.5)]


def test_quoted_fields_keep_delimiters_and_newlines(make_files, ingest_run, sql):
    text = ('id,name,comment\n'
            '1,"Smith, John","said ""hi"""\n'
            '2,"Doe; Jane","two\nlines"\n'
            '3,plain,"a|b\tc"\n')
    report = ingest_run(make_files({"people.csv": text}))
    assert (report.input_rows, report.quarantined_rows) == (3, 0)
    assert sql("SELECT id, name, comment FROM p.people ORDER BY id") == [
        (1, "Smith, John", 'said "hi"'), (2, "Doe; Jane", "two\nlines"), (3, "plain", "a|b\tc")]


def test_title_rows_above_the_header_are_skipped(make_files, ingest_run, sql, schema):
    text = ("Monthly revenue report\nGenerated 2024-02-01 by ERP\n"
            "region,revenue\nnorth,100\nsouth,200\neast,300\n")
    report = ingest_run(make_files({"revenue.csv": text}))
    assert report.tables[0].rows == 3
    assert sql("SELECT region, revenue FROM p.revenue ORDER BY revenue") == [
        ("north", 100), ("south", 200), ("east", 300)]
    notes = schema(report, "revenue")["sources"][0]["notes"]
    assert notes["title_rows_skipped"] == 2
    assert "Monthly revenue report" in notes["title_rows"]


def test_utf8_bom_is_not_part_of_the_first_column_name(make_files, ingest_run, sql):
    data = codecs.BOM_UTF8 + "id,name\n1,Zoë\n2,Ana\n".encode()
    report = ingest_run(make_files({"bom.csv": data}))
    assert set(report.tables[0].columns) >= {"id", "name"}
    assert sql("SELECT name FROM p.bom WHERE id = 1") == [("Zoë",)]


def test_utf16_with_bom(make_files, ingest_run, sql, schema):
    data = "id;name\n1;Jürgen\n2;Łukasz\n3;Chloé\n".encode("utf-16")  # BOM included
    report = ingest_run(make_files({"wide.csv": data}))
    assert report.tables[0].rows == 3
    assert sql("SELECT name FROM p.wide ORDER BY id") == [("Jürgen",), ("Łukasz",), ("Chloé",)]
    assert schema(report, "wide")["sources"][0]["notes"]["encoding"] == "utf-16"


def _german_cp1252(rows: int) -> bytes:
    body = "".join(f"{i};{GERMAN[i % 10]};{i},50 €\n" for i in range(rows))
    return ("id;name;preis\n" + body).encode("cp1252")


def test_cp1252_with_umlauts_and_euro(make_files, ingest_run, sql, schema):
    report = ingest_run(make_files({"kunden.csv": _german_cp1252(30)}))
    assert schema(report, "kunden")["sources"][0]["notes"]["encoding"] == "cp1252"
    assert sql("SELECT name, preis FROM p.kunden WHERE id IN (0, 2) ORDER BY id") == [
        ("Müller", 0.5), ("Ärger", 2.5)]
    assert report.tables[0].columns["preis"] == "DOUBLE"


def test_small_cp1252_file_is_not_read_as_a_mac_codepage(make_files, ingest_run, sql):
    ingest_run(make_files({"kunden.csv": _german_cp1252(3)}))
    assert sql("SELECT name FROM p.kunden ORDER BY id") == [("Müller",), ("Größe",), ("Ärger",)]


def test_file_without_header_gets_generated_names(make_files, ingest_run, sql, schema):
    report = ingest_run(make_files({"matrix.csv": "1,2.5,3\n4,5.5,6\n7,8.5,9\n"}))
    t = report.tables[0]
    assert t.rows == 3  # the first row is data, not a header
    assert list(t.columns) == ["column_1", "column_2", "column_3"]
    assert sql("SELECT column_1, column_2 FROM p.matrix ORDER BY column_1") == [(1, 2.5), (4, 5.5), (7, 8.5)]
    assert schema(report, "matrix")["sources"][0]["notes"]["header"] is False


def test_wrong_field_counts_are_quarantined_with_line_and_raw_text(make_files, ingest_run, sql):
    text = "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n"
    report = ingest_run(make_files({"ragged.csv": text}))
    assert (report.input_rows, report.tables[0].rows, report.quarantined_rows) == (4, 2, 2)
    rows = sql("SELECT table_name, file, line, raw, reason FROM p._quarantine ORDER BY line")
    assert [r[:4] for r in rows] == [("ragged", "ragged.csv", 3, "4,5"), ("ragged", "ragged.csv", 4, "6,7,8,9")]
    assert "missing columns" in rows[0][4] and "too many columns" in rows[1][4]
    assert sql("SELECT a FROM p.ragged ORDER BY a") == [(1,), (10,)]


def test_line_numbers_count_title_rows(make_files, ingest_run, sql):
    text = "Export\n\nid,note,v\n1,a,1\n2,ok,2\n3,bad\n4,ok,4\n"
    ingest_run(make_files({"titled.csv": text}))
    assert sql("SELECT line, raw FROM p._quarantine") == [(6, "3,bad")]


def test_line_numbers_after_a_multiline_field(make_files, ingest_run, sql):
    text = 'id,note,v\n1,"two\nlines",1\n2,ok,2\n3,bad\n4,ok,4\n'
    ingest_run(make_files({"multi.csv": text}))
    assert sql("SELECT line, raw FROM p._quarantine") == [(5, "3,bad")]  # physical line 5


def test_row_number_is_the_place_in_the_file_after_a_rejected_line(make_files, ingest_run, sql):
    lines = ["id,amount", "1,1.5", "2,2.5", "oops"] + [f"{i},{i}.5" for i in range(3, 60)]
    ingest_run(make_files({"shifted.csv": "\n".join(lines) + "\n"}))
    # records: 1 -> id 1, 2 -> id 2, 3 -> 'oops' (quarantined), 4 -> id 3
    assert sql("SELECT _row_number FROM p.shifted WHERE id = 3") == [(4,)]
