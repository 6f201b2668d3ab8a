"""Every input file ends in exactly one of: table, bad file, skipped; every record in exactly one of:
row, quarantine. JSON of every shape, prose and notes sheets included."""

from __future__ import annotations

import json
import random

import pytest


def _outcomes(report, name):
    """Where the input file ``name`` ended: table sources (sheets, child tables) count as the file."""
    def mine(path):
        return path == name or path.startswith((f"{name}[", f"{name}#", f"{name}!/"))
    found = set()
    if any(mine(s) for t in report.tables for s in t.sources):
        found.add("table")
    if any(mine(b.path) for b in report.bad_files):
        found.add("bad")
    if any(mine(s.path) for s in report.skipped_files):
        found.add("skipped")
    return found


@pytest.mark.parametrize("doc, column, rows", [
    (["a", "b"], "VARCHAR", [("a",), ("b",)]),
    ([1, 2, 3], "BIGINT", [(1,), (2,), (3,)]),
    ([1.5, None, 2.5], "DOUBLE", [(1.5,), (None,), (2.5,)]),
    ([True, False], "BOOLEAN", [(True,), (False,)]),
    ([[1, 2], [3]], "BIGINT[]", [([1, 2],), ([3],)]),
    (["x", 1, True], "VARCHAR", [("x",), ("1",), ("true",)]),
])
def test_json_arrays_of_values_are_a_one_column_table(doc, column, rows, make_files, ingest_run, sql):
    """Regression (issue 16): arrays of scalars vanished (no table, not bad, not skipped)."""
    report = ingest_run(make_files({"values.json": json.dumps(doc)}))
    assert report.tables[0].columns == {"value": column}
    assert report.input_rows == len(doc)
    assert sql("SELECT value FROM p.values ORDER BY _row_number") == rows


@pytest.mark.parametrize("text, reason", [("[]", "an empty JSON array"), ("{}", "an empty JSON object"),
                                          ("  [ ]  ", "an empty JSON array")])
def test_empty_json_documents_are_skipped_with_a_reason(text, reason, make_files, ingest_run):
    report = ingest_run(make_files({"empty.json": text}))
    assert report.tables == [] and [s.path for s in report.skipped_files] == ["empty.json"]
    assert report.skipped_files[0].reason.startswith(reason)


def test_objects_mixed_with_values_quarantine_the_values(make_files, ingest_run, sql):
    report = ingest_run(make_files({"mix.json": json.dumps([{"a": 1}, 7, {"a": 2}, "x"])}))
    assert (report.tables[0].rows, report.quarantined_rows) == (2, 2)
    assert sql("SELECT row_number, raw FROM p._quarantine ORDER BY 1") == [(2, "7"), (4, '"x"')]


def test_regression_an_over_deep_jsonl_line_is_quarantined_not_the_file(make_files, ingest_run, sql):
    deep = "[" * 5000 + "]" * 5000
    nested = '{"a": ' * 100 + "1" + "}" * 100
    report = ingest_run(make_files({"log.jsonl": f'{{"a": 1}}\n{deep}\n{{"a": 2}}\n{{"b": {nested}}}\n'}))
    assert report.bad_files == []
    assert (report.tables[0].rows, report.quarantined_rows) == (2, 2)
    reasons = sql("SELECT line, reason FROM p._quarantine ORDER BY line")
    assert [r[0] for r in reasons] == [2, 4] and all("nested" in r[1] for r in reasons)


def test_an_over_deep_element_of_a_json_array_is_quarantined(make_files, ingest_run, sql):
    deep = "[" * 5000 + "]" * 5000
    report = ingest_run(make_files({"a.json": f'[{{"x": 1}}, {deep}, {{"x": "a[b]{{c"}}]'}))
    assert (report.tables[0].rows, report.quarantined_rows) == (2, 1)
    assert sql("SELECT x FROM p.a ORDER BY _row_number") == [("1",), ("a[b]{c",)]


def test_invalid_json_documents_are_bad_files_with_the_place(make_files, ingest_run):
    report = ingest_run(make_files({"broken.json": '[{"a": 1}, {"a": 2,, }]'}))
    assert [b.path for b in report.bad_files] == ["broken.json"]
    assert "invalid JSON" in report.bad_files[0].reason and "character" in report.bad_files[0].reason


PROSE = {
    "README.txt": "This folder holds the exports.\nPlease do not edit them by hand, thanks.\nAsk Ann.\n",
    "NOTES.txt": "Notes\n\nThe March export was re-run on the 4th because the ERP was down.\n"
                 "Totals include returns; see the finance wiki for the rules.\n",
    "about.txt": "Sales data\nExported every Monday at six in the morning by the ERP job\n"
                 "Columns are described in the data dictionary on the shared drive\n",
    "letter.dat": "Dear team,\nthe numbers for Q3 look fine, but please check the Berlin store; it seems\n"
                  "to be missing two days. Thanks, and have a good weekend,\nAnn\n",
}


@pytest.mark.parametrize("name", sorted(PROSE))
def test_prose_is_skipped_with_its_reason(name, make_files, ingest_run):
    """Regression (issue 16): a README.txt became a 0-row table named after its first line."""
    report = ingest_run(make_files({name: PROSE[name], "data.csv": "id,comment\n1,a fine day for a walk\n"
                                                                  "2,not quite as nice as we hoped\n"}))
    assert [t.name for t in report.tables] == ["data"]
    assert [s.path for s in report.skipped_files] == [name]
    assert report.skipped_files[0].reason.startswith("not tabular")


@pytest.mark.parametrize("odd", [0, 3])
def test_a_table_with_sentences_in_a_column_is_still_a_table(odd, make_files, ingest_run):
    """Reviews are sentences; a few with an unquoted comma are quarantined, not the file skipped."""
    rows = [f"{i},This product was really very good and I would buy it again {i}" for i in range(20)]
    for k in range(odd):
        rows[k * 5] = f"{k * 5},Good, but the box was damaged when it arrived at my door"
    report = ingest_run(make_files({"reviews.txt": "id,review\n" + "\n".join(rows) + "\n"}))
    assert (report.tables[0].rows, report.quarantined_rows) == (20 - odd, odd) and report.skipped_files == []


def _random_file(rng, k):
    """(name, bytes, records) of one of several shapes; records is None when no table is due."""
    n = rng.randrange(0, 6)
    shape = rng.choice(["csv", "csv_bad", "json_objects", "json_values", "json_empty", "jsonl", "prose",
                        "empty", "nul_line", "broken_json"])
    if shape == "csv":
        return f"c{k}.csv", ("id,v\n" + "".join(f"{i},{i}.5\n" for i in range(n + 1))).encode(), n + 1
    if shape == "csv_bad":
        return f"b{k}.csv", ("id,v\n1,2\n3\n4,5,6\n" + "".join(f"{i},x\n" for i in range(n))).encode(), n + 3
    if shape == "nul_line":
        return f"z{k}.csv", b"id,v\n1,2\n3,\x004\n5,6\n", 3
    if shape == "json_objects":
        return f"o{k}.json", json.dumps([{"a": i, "b": {"c": str(i)}} for i in range(n + 1)]).encode(), n + 1
    if shape == "json_values":
        return f"s{k}.json", json.dumps([rng.choice([1, "x", 2.5, None]) for _ in range(n + 1)]).encode(), n + 1
    if shape == "json_empty":
        return f"e{k}.json", b"[]", None
    if shape == "jsonl":
        lines = [json.dumps({"i": i}) for i in range(n + 1)] + ["not json", "[" * 3000 + "]" * 3000]
        return f"l{k}.jsonl", ("\n".join(lines) + "\n").encode(), n + 3
    if shape == "prose":
        return f"p{k}.txt", PROSE[rng.choice(sorted(PROSE))].encode(), None
    if shape == "broken_json":
        return f"x{k}.json", b'[{"a": 1},,]', None
    return f"m{k}.csv", b"", None


@pytest.mark.parametrize("seed", range(4))
def test_every_file_and_every_record_ends_in_exactly_one_place(seed, make_files, ingest_run):
    rng = random.Random(seed)
    files = [_random_file(rng, k) for k in range(12)]
    report = ingest_run(make_files({name: data for name, data, _ in files}))
    for name, _, records in files:
        assert len(_outcomes(report, name)) == 1, (name, _outcomes(report, name))
        if records is not None:
            assert _outcomes(report, name) == {"table"}, name
    tables = {s: t for t in report.tables for s in t.sources}
    expected = sum(r for _, _, r in files if r is not None)
    assert report.input_rows == expected
    assert sum(t.rows for t in report.tables) + report.quarantined_rows == expected
    assert all(len(t.sources) == 1 for t in tables.values())


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-8"])
def test_json_lines_and_arrays_in_other_encodings(encoding, make_files, ingest_run, sql):
    lines = "".join(json.dumps({"id": i, "name": "Zoë"}, ensure_ascii=False) + "\n" for i in range(3))
    array = json.dumps([{"id": i, "name": "Jürgen"} for i in range(2)], ensure_ascii=False)
    report = ingest_run(make_files({"l.jsonl": lines.encode(encoding), "a.json": array.encode(encoding)}))
    assert {t.name: t.rows for t in report.tables} == {"l": 3, "a": 2} and report.quarantined_rows == 0
    assert sql("SELECT DISTINCT name FROM p.l") == [("Zoë",)]
    assert sql("SELECT DISTINCT name FROM p.a") == [("Jürgen",)]
