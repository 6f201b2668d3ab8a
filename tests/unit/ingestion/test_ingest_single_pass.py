"""The single pass of large clean delimited files: ``COPY`` from ``read_csv`` straight to Parquet.

A file that takes the typed read (16 MB and up, see ``ingestion.readers.delimited``) is not loaded
into a staging table: its records are numbered in scan order by the write's ``COPY``. These tests
check that the numbers still are the records' places in the file (over many chunks and DuckDB's
threads), that malformed lines keep their numbers, that files read together still union, and that
the lineage hash computed beside the read is the file's.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from ingestion.readers import delimited


def _big_csv(rows: int, bad: set[int] = frozenset()) -> str:
    """``id`` is the record's number in the file (1-based); line ``id + 1`` (after the header)."""
    lines = ["id,amount,day,flag,code,note\n"]
    for i in range(1, rows + 1):
        if i in bad:
            lines.append(f"broken line {i}\n")  # one field: DuckDB rejects it
        else:
            lines.append(f"{i},{i * 0.25},2024-03-{1 + i % 28:02d},{'true' if i % 3 else 'false'},"
                         f"c{i % 7},  note {i % 11}  \n")
    return "".join(lines)


@pytest.fixture(scope="module")
def big_text() -> str:
    text = _big_csv(700_000)
    assert len(text) > delimited.TYPED_BYTES  # the real threshold: no patching
    return text


def test_record_numbers_of_a_multi_chunk_clean_file_are_its_line_order(big_text, make_files, ingest_run,
                                                                          sql, schema):
    folder = make_files({"orders.csv": big_text})
    report = ingest_run(folder)
    table = report.tables[0]
    assert (table.rows, report.quarantined_rows, report.input_rows) == (700_000, 0, 700_000)
    assert table.columns == {"id": "BIGINT", "amount": "DOUBLE", "day": "DATE", "flag": "BOOLEAN",
                             "code": "VARCHAR", "note": "VARCHAR"}
    assert schema(report, "orders")["sources"][0]["notes"]["types"].startswith("from the first")
    assert sql("SELECT count(*), count(*) FILTER (WHERE _row_number <> id), min(_row_number), "
               "max(_row_number), count(DISTINCT _row_number) FROM p.orders") == [(700_000, 0, 1, 700_000, 700_000)]
    # the Parquet file itself is in file order, and text is cleaned as the exact read cleans it
    assert sql("SELECT count(*) FROM (SELECT id - lag(id) OVER () AS step FROM p.orders) WHERE step <> 1") == [(0,)]
    assert sql("SELECT note FROM p.orders WHERE id = 5") == [("note 5",)]


def test_sha256_recorded_is_hashlibs_and_an_unchanged_file_is_not_read_again(big_text, make_files, ingest_run,
                                                                            sql):
    folder = make_files({"orders.csv": big_text})
    first = ingest_run(folder)
    assert sql("SELECT sha256, size FROM p._lineage") == [
        (hashlib.sha256(big_text.encode()).hexdigest(), len(big_text.encode()))]
    second = ingest_run(folder)
    assert [(t.version, t.changed, t.rows) for t in second.tables] == [("v0001", False, 700_000)]
    assert first.tables[0].version == "v0001"


def test_malformed_lines_in_a_single_pass_keep_every_records_number(make_files, ingest_run, sql):
    bad = {3, 250_001, 419_999}
    folder = make_files({"orders.csv": _big_csv(420_000, bad)})
    report = ingest_run(folder)
    assert (report.tables[0].rows, report.quarantined_rows, report.input_rows) == (420_000 - 3, 3, 420_000)
    assert sql("SELECT line, row_number, raw FROM p._quarantine ORDER BY line") == [
        (n + 1, n, f"broken line {n}") for n in sorted(bad)]
    assert sql("SELECT count(*) FILTER (WHERE _row_number <> id), count(*) FROM p.orders") == [(0, 420_000 - 3)]


def test_a_late_value_failing_its_type_falls_back_to_the_exact_read(make_files, ingest_run, sql, schema):
    text = _big_csv(420_000).replace("\n400000,", "\nabc,", 1)
    folder = make_files({"orders.csv": text})
    report = ingest_run(folder)
    assert "types" not in schema(report, "orders")["sources"][0]["notes"]
    assert report.tables[0].columns["id"] == "BIGINT"  # one odd value in 420,000: quarantined
    assert report.quarantined_rows == 1
    assert sql("SELECT row_number, line FROM p._quarantine") == [(400_000, 400_001)]
    assert sql("SELECT count(*) FILTER (WHERE _row_number <> id) FROM p.orders") == [(0,)]


@pytest.fixture
def every_file_typed(monkeypatch):
    monkeypatch.setattr(delimited, "TYPED_BYTES", 0)
    monkeypatch.setattr(delimited, "SAMPLE_RECORDS", 5)


def test_files_read_together_are_staged_and_union_with_their_own_numbers(every_file_typed, make_files,
                                                                         ingest_run, sql):
    folder = make_files({"sales_2024_01.csv": "id,v\n1,1.5\n2,2.5\n3,3.5\n",
                         "sales_2024_02.csv": "id,v\n10,1.0\nbad\n12,3.0\n"})
    report = ingest_run(folder)
    assert [(t.name, t.rows) for t in report.tables] == [("sales", 5)]
    assert report.quarantined_rows == 1
    assert sql("SELECT _source_file, _row_number, id FROM p.sales ORDER BY 1, 2") == [
        ("sales_2024_01.csv", 1, 1), ("sales_2024_01.csv", 2, 2), ("sales_2024_01.csv", 3, 3),
        ("sales_2024_02.csv", 1, 10), ("sales_2024_02.csv", 3, 12)]


def test_cleaned_text_is_what_the_former_expression_gave():
    """The guard in ``ingestion.infer.cleaned`` only skips work: same value for every string."""
    import duckdb
    import pyarrow as pa

    from gristmill.sql import literal
    from ingestion.infer import NULL_TOKENS, cleaned

    tokens = ", ".join(literal(t) for t in NULL_TOKENS)
    former = (f"(CASE WHEN strlen(v) <= 12 AND lower(trim(v)) IN ({tokens}) THEN NULL "
              "WHEN starts_with(v, ' ') OR ends_with(v, ' ') THEN trim(v) ELSE v END)")
    alphabet = [" ", "\u00a0", "\u3000", "\t", "n", "N", "a", "/", "-", "?", "#", "(", ")", "m", "M", "K",
                "k", "\u212a", "x", "\u00e9", "!", "l", "u", ".", "0", "\x00"]
    rng = random.Random(7)
    values = [*NULL_TOKENS, *(t.upper() for t in NULL_TOKENS), *(f" {t} " for t in NULL_TOKENS),
              "\u212aa", "\u00a0na", None]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(50_000)]
    con = duckdb.connect()
    con.register("t", pa.table({"v": pa.array(values, pa.string())}))
    differ, nulls = con.execute(f"SELECT count(*) FILTER (WHERE {cleaned('v')} IS DISTINCT FROM {former}), "
                                f"count(*) FILTER (WHERE {former} IS NULL) FROM t").fetchall()[0]
    assert differ == 0
    assert nulls > 3 * len(NULL_TOKENS)  # the tokens (and random ones) did become missing


@pytest.mark.parametrize("data", [
    b"a,b\n1,2\n" * 10, "a,b\nM\u00fcller,2\n".encode() * 10, b"a,b\n1,\x002\n", b"a,b\nM\xfcller,2\n",
    b"a,b\n" + b"x" * ((1 << 20) - 5) + "\u00e9,1\n".encode(),  # a character across two blocks
    b"a,b\n" + b"x" * ((1 << 20) - 4) + b"\xc3", b'a,b\n"1",2\n', b"a,b\n1,2\n\n3,4\n",
    b"a,b\n" + b"x" * ((1 << 20) - 5) + b"\n\r\n1,2\n",
])
def test_the_whole_file_check_agrees_with_plan_text_and_the_line_check(data, tmp_path):
    from ingestion.readers.textlines import plan_text

    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert delimited._whole_file(path) == (plan_text(path, "utf-8").clean_utf8,
                                           delimited._one_line_per_record(path))


def test_a_file_not_clean_past_its_first_bytes_is_read_as_before(make_files, ingest_run, sql, schema):
    text = _big_csv(420_000).replace(",c3,  note 10  \n", ",Zo\u00eb,  note 10  \n", 1)
    assert "Zo\u00eb" in text  # a UTF-8 line in the first bytes: the file is UTF-8 ...
    cut = text.index("\n400000,")  # ... and a line far below is Latin-1
    latin1 = "\n400000,1.0,2024-03-01,true,M\u00fcller,x\n".encode("cp1252")  # past the first 64 KB
    folder = make_files({"orders.csv": text[:cut].encode() + latin1 + text[cut:].split("\n", 2)[2].encode()})
    report = ingest_run(folder)
    assert report.quarantined_rows == 1  # the Latin-1 line, in its place
    assert sql("SELECT line, row_number FROM p._quarantine") == [(400_001, 400_000)]
    assert sql("SELECT count(*) FILTER (WHERE _row_number <> id), count(*) FROM p.orders") == [(0, 419_999)]
    assert "not valid utf-8" in sql("SELECT reason FROM p._quarantine")[0][0]
    assert schema(report, "orders")["sources"][0]["notes"]["encoding"].startswith("utf-8 (1 line(s)")


def test_background_workers_are_one_per_process(monkeypatch):
    """A process forked after an ingestion (a queue worker) must not wait on its parent's thread."""
    import os

    from ingestion.discover import worker

    first = worker("test")
    assert worker("test") is first
    monkeypatch.setattr(os, "getpid", lambda: -1)
    other = worker("test")
    assert other is not first and other.submit(lambda: 42).result() == 42
    other.shutdown()
