"""Tables and names: monthly files union, mixed formats union, snake_case, collisions, originals."""

from __future__ import annotations

import io
import json

import pytest

from ingestion import SourceSpec
from ingestion.names import column_names, dataset_base, snake, table_name, unique


def test_monthly_files_union_into_one_table(make_files, ingest_run, sql, tables):
    folder = make_files({"sales_2024_01.csv": "id,amount\n1,1.5\n2,2.5\n",
                         "sales_2024_02.csv": "amount,id\n3.5,3\n",  # same columns, other order
                         "sales_2024_03.csv": "id,amount\n4,4.5\n5,5.5\n"})
    report = ingest_run(folder)
    (sales,) = report.tables
    assert (sales.name, sales.rows) == ("sales", 5)
    assert sales.sources == ["sales_2024_01.csv", "sales_2024_02.csv", "sales_2024_03.csv"]
    assert sql("SELECT _source_file, count(*), sum(amount) FROM p.sales GROUP BY 1 ORDER BY 1") == [
        ("sales_2024_01.csv", 2, 4.0), ("sales_2024_02.csv", 1, 3.5), ("sales_2024_03.csv", 2, 10.0)]
    assert sql("SELECT id, _row_number FROM p.sales WHERE _source_file = 'sales_2024_03.csv' ORDER BY id") == [
        (4, 1), (5, 2)]


def test_same_data_as_csv_and_parquet_union(make_files, ingest_run, sql):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [3, 4], "amount": [3.5, 4.5]}), buf)
    folder = make_files({"orders_2024_01.csv": "id,amount\n1,1.5\n2,2.5\n", "orders_2024_02.parquet": buf.getvalue()})
    report = ingest_run(folder)
    (orders,) = report.tables
    assert (orders.name, orders.rows) == ("orders", 4)
    assert orders.columns == {"id": "BIGINT", "amount": "DOUBLE"}
    assert sql("SELECT id, amount, _source_file FROM p.orders ORDER BY id") == [
        (1, 1.5, "orders_2024_01.csv"), (2, 2.5, "orders_2024_01.csv"),
        (3, 3.5, "orders_2024_02.parquet"), (4, 4.5, "orders_2024_02.parquet")]


def test_same_base_name_with_other_columns_gets_its_own_table(make_files, ingest_run, tables):
    folder = make_files({"export_2024_01.csv": "id,amount\n1,2\n", "export_2024_02.csv": "sku,qty,price\nx,1,2\n"})
    report = ingest_run(folder)
    found = tables(report)
    assert set(found) == {"export", "export_2"}
    assert {tuple(t.columns) for t in found.values()} == {("id", "amount"), ("sku", "qty", "price")}


def test_column_names_are_snake_case_unique_and_keep_originals(make_files, ingest_run, sql, schema, lake):
    header = "Customer ID,A,a,First Name,first_name,%,2nd,Gebühr (€),"
    folder = make_files({"People List.csv": header + "\n1,x,w,Ann,Ann2,5,z,3,q\n2,x,w,Bob,Bob2,6,z,4,r\n"})
    report = ingest_run(folder)
    (people,) = report.tables
    assert people.name == "people_list"
    assert list(people.columns) == ["customer_id", "a", "a_2", "first_name", "first_name_2", "pct", "c_2nd",
                                    "gebuhr_eur", "column_9"]
    originals = {name: c["original_names"] for name, c in schema(report, "people_list")["cols"].items()}
    assert originals["customer_id"] == ["Customer ID"]
    assert (originals["a"], originals["a_2"]) == (["A"], ["a"])
    assert originals["gebuhr_eur"] == ["Gebühr (€)"]
    assert sql("SELECT a, a_2, first_name_2 FROM p.people_list ORDER BY customer_id") == [
        ("x", "w", "Ann2"), ("x", "w", "Bob2")]
    import pyarrow.parquet as pq

    meta = json.loads(pq.read_metadata(people.path).metadata[b"gristmill"])
    assert meta["original_names"]["first_name"] == ["First Name"]


def test_source_name_names_the_table(make_files, ingest_run, tables):
    folder = make_files({"x.csv": "a\n1\n"}, folder="one")
    report = ingest_run(SourceSpec(path=folder, name="Customer Master"))
    assert list(tables(report)) == ["customer_master"]


@pytest.mark.parametrize("raw, expected", [
    ("Customer ID", "customer_id"), ("customerID", "customer_id"), ("HTTPStatus", "http_status"),
    ("Straße", "strasse"), ("  spaces  ", "spaces"), ("1st", "c_1st"), ("", "column"),
    ('x"; DROP TABLE y; --', "x_drop_table_y"),
])
def test_snake(raw, expected):
    assert snake(raw) == expected


def test_column_names_never_collide_with_internal_columns():
    assert column_names(["_source_file", "_row_number", "A", "a", None]) == [
        "source_file", "row_number", "a", "a_2", "column_5"]
    assert unique(["x", "x", "x_2"], taken=["x"]) == ["x_2", "x_3", "x_2_2"]


@pytest.mark.parametrize("stem, base", [
    ("sales_2024_01", "sales"), ("Sales-March-2024", "sales"), ("report_q3", "report"),
    ("orders_part2", "orders"), ("2024_01", ""), ("book__orders", "book__orders"),
])
def test_dataset_base(stem, base):
    assert dataset_base(stem) == base


def test_table_name_from_a_digit_stem():
    assert table_name("2024 export") == "t_2024_export"
