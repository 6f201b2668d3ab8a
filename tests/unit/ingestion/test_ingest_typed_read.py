"""The typed read of large delimited files: same tables as the exact read, or a fall back to it.

Large files are read once with types decided on their first records (see
``ingestion.readers.delimited``). Here every file counts as large and the sample is tiny, so each
way out of the typed read is exercised on small data.
"""

import pytest

from ingestion.readers import delimited


@pytest.fixture(autouse=True)
def typed_read(monkeypatch):
    monkeypatch.setattr(delimited, "TYPED_BYTES", 0)
    monkeypatch.setattr(delimited, "SAMPLE_RECORDS", 5)


def _rows(n: int, start: int = 1) -> str:
    return "".join(f"{i},{i * 1.5},2024-01-{1 + i % 28:02d},{'true' if i % 2 else 'false'},c{i % 3}\n"
                   for i in range(start, start + n))


def test_clean_file_is_read_once_with_native_types(make_files, ingest_run, sql, schema):
    folder = make_files({"t.csv": "id,amount,day,flag,code\n" + _rows(20)})
    report = ingest_run(folder)
    table = report.tables[0]
    assert table.columns == {"id": "BIGINT", "amount": "DOUBLE", "day": "DATE", "flag": "BOOLEAN",
                             "code": "VARCHAR"}
    record = schema(report, "t")
    assert record["sources"][0]["notes"]["types"].startswith("from the first")
    assert {c["name"]: c["interpretation"] for c in record["columns"]}["amount"] == \
        "numbers with a decimal point"
    assert sql('select id, _row_number from p.t where id in (1, 20) order by id') == [(1, 1), (20, 20)]


def test_a_later_value_that_fails_its_type_falls_back_to_the_exact_read(make_files, ingest_run, sql, schema):
    body = _rows(10) + "NA,2.0,2024-02-01,true,c1\n" + _rows(10, start=11)
    folder = make_files({"t.csv": "id,amount,day,flag,code\n" + body})
    report = ingest_run(folder)
    assert report.tables[0].columns["id"] == "BIGINT"
    assert report.quarantined_rows == 0  # NA is a null token: the exact read makes it missing
    assert "types" not in schema(report, "t")["sources"][0]["notes"]
    assert sql("select count(*) from p.t where id is null") == [(1,)]


def test_messy_columns_take_the_exact_read(make_files, ingest_run, schema):
    folder = make_files({"t.csv": "id;betrag\n" + "".join(f"{i};{i},50\n" for i in range(1, 30))})
    report = ingest_run(folder)
    assert report.tables[0].columns == {"id": "BIGINT", "betrag": "DOUBLE"}
    assert "types" not in schema(report, "t")["sources"][0]["notes"]


def test_bad_lines_in_a_typed_read_are_quarantined_with_their_place(make_files, ingest_run, sql):
    body = _rows(10) + "broken,line\n" + _rows(10, start=11)
    folder = make_files({"t.csv": "id,amount,day,flag,code\n" + body})
    report = ingest_run(folder)
    assert (report.tables[0].rows, report.quarantined_rows) == (20, 1)
    assert sql("select line, row_number, raw from p._quarantine") == [(12, 11, "broken,line")]
    assert sql("select _row_number from p.t where id = 11") == [(12,)]
