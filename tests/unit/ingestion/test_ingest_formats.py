"""Formats detected by content: compression, zip, odd extensions, Excel, JSON(L), columnar, SQLite."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import sqlite3
import zipfile

import pytest

CSV = "id,name\n1,ann\n2,bob\n3,cy\n"


def _parquet(table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _sqlite(tmp_path) -> bytes:
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    con.executemany("INSERT INTO users VALUES (?, ?)", [(1, "ann"), (2, "bob")])
    con.execute("CREATE TABLE events (id INTEGER, kind TEXT, at TEXT)")
    con.executemany("INSERT INTO events VALUES (?, ?, ?)", [(i, "click", f"2024-01-0{i}") for i in (1, 2, 3)])
    con.commit()
    con.close()
    return path.read_bytes()


def test_compressed_files_are_unpacked(make_files, ingest_run, sql, tables):
    folder = make_files({"a.csv.gz": gzip.compress(CSV.encode()), "b.bz2": bz2.compress(CSV.encode()),
                         "c.xz": lzma.compress(CSV.encode())})
    report = ingest_run(folder)
    assert {n: t.rows for n, t in tables(report).items()} == {"a": 3, "b": 3, "c": 3}
    assert sql("SELECT name FROM p.c WHERE id = 2") == [("bob",)]
    assert sql("SELECT notes.decompressed FROM p._lineage ORDER BY table_name") == [("gzip",), ("bz2",), ("xz",)]


def test_zstd_file(make_files, ingest_run, sql):
    zstandard = pytest.importorskip("zstandard")
    ingest_run(make_files({"z.csv.zst": zstandard.ZstdCompressor().compress(CSV.encode())}))
    assert sql("SELECT count(*) FROM p.z") == [(3,)]


def test_zip_members_are_recorded_with_the_archive(make_files, ingest_run, sql, tables):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("customers.csv", CSV)
        archive.writestr("sub/orders.csv", "order_id,qty\n10,2\n11,5\n")
    report = ingest_run(make_files({"export.zip": buf.getvalue()}))
    found = tables(report)
    assert found["customers"].sources == ["export.zip!/customers.csv"]
    assert found["orders"].sources == ["export.zip!/sub/orders.csv"]
    assert sql("SELECT DISTINCT _source_file FROM p.orders") == [("export.zip!/sub/orders.csv",)]
    assert sql("SELECT sum(qty) FROM p.orders") == [(7,)]


def test_csv_with_dat_extension_and_without_extension(make_files, ingest_run, sql, tables):
    report = ingest_run(make_files({"legacy.dat": "p;q\n1;2\n3;4\n", "dump": "m|n\n5|6\n7|8\n"}))
    assert {n: t.rows for n, t in tables(report).items()} == {"legacy": 2, "dump": 2}
    assert sql("SELECT sum(q) FROM p.legacy") == [(6,)]
    assert sql("SELECT sum(n) FROM p.dump") == [(14,)]


def test_excel_title_rows_two_sheets_and_an_empty_one(tmp_path, make_files, ingest_run, sql, schema,
                                                     tables):
    import xlsxwriter

    path = tmp_path / "book.xlsx"
    book = xlsxwriter.Workbook(str(path))
    orders = book.add_worksheet("Orders")
    orders.write_row(0, 0, ["Quarterly orders"])
    orders.write_row(1, 0, ["exported 2024-04-01"])
    orders.write_row(3, 0, ["Order ID", "Amount", "Paid"])
    for i in range(5):
        orders.write_row(4 + i, 0, [i + 1, i * 1.5, "yes" if i % 2 else "no"])
    people = book.add_worksheet("Customers")
    people.write_row(0, 0, ["Name", "City"])
    people.write_row(1, 0, ["Ann", "Rome"])
    people.write_row(2, 0, ["Bob", "Oslo"])
    book.add_worksheet("Empty")
    book.close()
    report = ingest_run(make_files({"book.xlsx": path.read_bytes()}))
    assert {t.name: t.rows for t in report.tables} == {"book__orders": 5, "book__customers": 2}
    assert tables(report)["book__orders"].columns == {"order_id": "BIGINT", "amount": "DOUBLE", "paid": "BOOLEAN"}
    assert sql("SELECT order_id, amount, _row_number FROM p.book__orders WHERE order_id = 4") == [(4, 4.5, 8)]
    source = schema(report, "book__orders")["sources"][0]
    assert source["path"] == "book.xlsx[Orders]"
    assert (source["notes"]["header_row"], source["notes"]["title_rows_skipped"]) == (4, 2)


def test_json_nested_objects_and_child_tables(make_files, ingest_run, sql, tables):
    doc = [{"id": 1, "customer": {"name": "A", "addr": {"city": "X"}}, "tags": ["a", "b"],
            "items": [{"sku": "s1", "qty": 2}, {"sku": "s2", "qty": 1}]},
           {"id": 2, "customer": {"name": "B", "addr": {"city": "Y"}},
            "items": [{"sku": "s3", "qty": 5}]}]
    report = ingest_run(make_files({"orders.json": json.dumps(doc)}))
    found = tables(report)
    assert found["orders"].columns == {"id": "BIGINT", "customer__name": "VARCHAR",
                                       "customer__addr__city": "VARCHAR", "tags": "VARCHAR[]"}
    assert found["orders__items"].columns == {"parent_row_number": "BIGINT", "sku": "VARCHAR", "qty": "BIGINT"}
    assert sql("SELECT o.id, i.sku FROM p.orders o JOIN p.orders__items i "
               "ON i.parent_row_number = o._row_number ORDER BY i.sku") == [(1, "s1"), (1, "s2"), (2, "s3")]


def test_json_records_under_a_single_key_are_unwrapped(make_files, ingest_run, sql):
    doc = {"data": [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]}
    report = ingest_run(make_files({"api.json": json.dumps(doc)}))
    assert report.tables[0].rows == 2
    assert sql("SELECT x, y FROM p.api ORDER BY x") == [(1, "a"), (2, "b")]


def test_jsonl_drifting_keys_and_broken_lines(make_files, ingest_run, sql):
    text = ('{"id": 1, "a": 1}\n{"id": 2, "b": "x"}\nnot json\n\n'
            '{"id": 3, "a": 2, "c": true}\n[1, 2]\n{"id": 4, "a": 3\n')
    report = ingest_run(make_files({"log.jsonl": text}))
    t = report.tables[0]
    assert (t.rows, t.quarantined_rows, report.input_rows) == (3, 3, 6)
    assert t.columns == {"id": "BIGINT", "a": "BIGINT", "b": "VARCHAR", "c": "BOOLEAN"}
    assert sql("SELECT id, a, b, c FROM p.log ORDER BY id") == [
        (1, 1, None, None), (2, None, "x", None), (3, 2, None, True)]
    quarantined = sql("SELECT line, raw, reason FROM p._quarantine ORDER BY line")
    assert [q[:2] for q in quarantined] == [(3, "not json"), (6, "[1, 2]"), (7, '{"id": 4, "a": 3')]
    assert quarantined[0][2].startswith("invalid JSON") and "not a JSON object" in quarantined[1][2]


def test_parquet_and_feather_keep_their_types(make_files, ingest_run, sql, schema):
    import pyarrow as pa
    import pyarrow.feather as feather

    feather_buf = io.BytesIO()
    feather.write_feather(pa.table({"Label Name": ["p", "q"], "f": [1.5, 2.5]}), feather_buf)
    # "a" sorts before "b": the Parquet file is read last
    folder = make_files({"a.feather": feather_buf.getvalue(),
                         "b.parquet": _parquet(pa.table({"k": [1, 2, 3], "v": ["x", "y", "z"]}))})
    report = ingest_run(folder)
    assert {t.name: t.columns for t in report.tables} == {
        "a": {"label_name": "VARCHAR", "f": "DOUBLE"}, "b": {"k": "BIGINT", "v": "VARCHAR"}}
    assert schema(report, "a")["cols"]["label_name"]["original_names"] == ["Label Name"]
    assert sql("SELECT sum(k) FROM p.b") == [(6,)]


def test_sqlite_tables_become_tables(tmp_path, make_files, ingest_run, sql, tables):
    report = ingest_run(make_files({"shop.sqlite": _sqlite(tmp_path)}))
    found = tables(report)
    assert {n: t.rows for n, t in found.items()} == {"users": 2, "events": 3}
    assert found["events"].columns == {"id": "BIGINT", "kind": "VARCHAR", "at": "DATE"}
    assert found["users"].sources == ["shop.sqlite[users]"]


def test_parquet_followed_by_sqlite_and_json(tmp_path, make_files, ingest_run, tables):
    import pyarrow as pa

    folder = make_files({"a.parquet": _parquet(pa.table({"k": [1, 2]})), "b.sqlite": _sqlite(tmp_path),
                         "c.json": json.dumps([{"x": 1}])})
    report = ingest_run(folder)
    assert report.bad_files == []
    assert set(tables(report)) == {"a", "users", "events", "c"}


def test_non_data_files_are_skipped_with_reasons(make_files, ingest_run):
    folder = make_files({"logo.png": b"\x89PNG\r\n\x1a\n" + bytes(64), "README.md": "# Data\na,b\n1,2\n",
                         "empty.csv": b"", ".DS_Store": b"\x00\x01", "ok.csv": CSV})
    report = ingest_run(folder)
    assert [t.name for t in report.tables] == ["ok"] and report.bad_files == []
    reasons = {s.path: s.reason for s in report.skipped_files}
    assert reasons == {"logo.png": "not data: a PNG image", "README.md": "not data: a .md document",
                       "empty.csv": "empty file", ".DS_Store": "hidden file"}
