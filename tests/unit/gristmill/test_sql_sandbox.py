"""``sandboxed_query``: the caller's tables work; every other table, file and setting is out of reach."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from gristmill.errors import GristmillError
from gristmill.sql import sandboxed_query


@pytest.fixture
def ws(workspace, add_tables):
    """Projects ``shop``, ``other`` and ``shopping`` (a name that ``shop``'s lake folder prefixes)."""
    add_tables(workspace, "shop", {"customers": pd.DataFrame({"id": [1, 2, 3, 4, 5], "name": list("abcde")})})
    add_tables(workspace, "other", {"customers": pd.DataFrame({"id": [9], "name": ["secret"]})})
    add_tables(workspace, "shopping", {"carts": pd.DataFrame({"id": [7]})})
    return workspace


def run(ws, query, also=(), max_rows=100, max_seconds=10.0):
    return sandboxed_query(ws, "shop", list(also), query, max_rows, max_seconds)


def refused(ws, query, also=()) -> str:
    with pytest.raises(GristmillError) as caught:
        run(ws, query, also)
    message = str(caught.value)
    assert "\n" not in message and "secret" not in message
    return message


def test_own_tables_by_plain_and_qualified_name(ws):
    result = run(ws, "select id, name from customers order by id")
    assert result == {"columns": ["id", "name"], "rows": [[1, "a"], [2, "b"], [3, "c"], [4, "d"], [5, "e"]],
                      "truncated": False, "row_limit": 100}
    assert run(ws, "from shop.customers select count(*) as n")["rows"] == [[5]]
    assert run(ws, "with c as (select * from customers) select max(id) from c;")["rows"] == [[5]]


def test_own_files_by_path_still_work(ws):
    path = ws.lake("shop") / "customers.parquet"
    assert run(ws, f"select count(*) from read_parquet('{path}')")["rows"] == [[5]]
    climbs_back = f"{path.parent}/../shop/customers.parquet"
    assert run(ws, f"select count(*) from read_parquet('{climbs_back}')")["rows"] == [[5]]


def test_also_projects_are_readable_and_nothing_else(ws):
    result = run(ws, "select name from other.customers", also=["other"])
    assert result["rows"] == [["secret"]]
    assert "shopping" in refused(ws, "select * from shopping.carts", also=["other"])


def test_explain_of_a_select_is_allowed(ws):
    assert run(ws, "explain select * from customers")["rows"]
    assert run(ws, "EXPLAIN ANALYZE select count(*) from customers")["rows"]


ESCAPES = {  # SELECTs that try to reach what is not the caller's; {names} are the test's paths
    "other schema": "select * from other.customers",
    "other schema via catalog name": "select * from memory.other.customers",
    "system file": "select * from read_csv('/etc/passwd')",
    "system file as text": "select * from read_text('/etc/passwd')",
    "catalog file": "select * from read_blob('{catalog}')",
    "other lake": "select * from read_parquet('{other}/customers.parquet')",
    "other lake by glob": "select * from read_parquet('{root}/lake/*/customers.parquet')",
    "listing every lake": "select * from glob('{root}/lake/*')",
    "dot-dot from own lake": "select * from read_parquet('{lake}/../other/customers.parquet')",
    "dot-dot twice": "select * from read_parquet('{lake}/./../shop/../other/customers.parquet')",
    "lake folder name prefix": "select * from read_parquet('{shopping}/carts.parquet')",
    "file url": "select * from read_parquet('file://{other}/customers.parquet')",
    "remote url": "select * from read_csv('https://example.com/x.csv')",
    "python variable": "select * from hidden_frame",
    "query() with COPY": "select * from query('COPY (select 1) TO ''{lake}/x.csv''')",
}


@pytest.mark.parametrize("case", list(ESCAPES))
def test_escapes_through_a_select_fail(ws, case):
    hidden_frame = pd.DataFrame({"s": ["secret"]})  # noqa: F841  (a replacement scan would find it)
    query = ESCAPES[case].format(lake=ws.lake("shop"), other=ws.lake("other"), shopping=ws.lake("shopping"),
                                 root=ws.root, catalog=ws.catalog)
    assert refused(ws, query).startswith("query failed: ")
    assert not (ws.lake("shop") / "x.csv").exists()


@pytest.mark.parametrize("query", [
    "COPY (select 1) TO '/tmp/gristmill-sandbox-x.csv'",
    "COPY (select 1) TO '{lake}/x.csv'",
    "COPY shop.customers FROM '/etc/passwd'",
    "EXPORT DATABASE '/tmp/gristmill-sandbox-export'",
    "ATTACH '{catalog}' AS cat",
    "ATTACH '{catalog}' AS cat (READ_ONLY)",
    "DETACH memory",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "CREATE TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW shop.customers AS SELECT 1",
    "INSERT INTO shop.customers VALUES (6, 'f')",
    "UPDATE shop.customers SET name = 'x'",
    "DELETE FROM shop.customers",
    "DROP VIEW shop.customers",
    "CALL pragma_version()",
    "EXPLAIN ANALYZE COPY (select 1) TO '{lake}/x.csv'",
    "explain \n  analyze   create table t as select 1",
    "select 1; select * from other.customers",
    "",
])
def test_statements_other_than_one_select_are_refused(ws, query):
    query = query.format(lake=ws.lake("shop"), catalog=ws.catalog)
    message = refused(ws, query)
    assert "only a single statement" in message or "only a read query" in message, message
    assert not (ws.lake("shop") / "x.csv").exists()
    assert not os.path.exists("/tmp/gristmill-sandbox-x.csv")


def test_the_sandbox_settings_are_in_force_and_locked(ws):
    names = ["enable_external_access", "lock_configuration", "threads", "memory_limit", "allowed_directories"]
    row = run(ws, "select " + ", ".join(f"current_setting('{n}')" for n in names))["rows"][0]
    settings = dict(zip(names, row))
    assert settings["enable_external_access"] is False and settings["lock_configuration"] is True
    assert settings["threads"] == 2 and settings["memory_limit"].replace(" ", "").startswith("953.6MiB")
    lakes = [str(ws.lake("shop").resolve()) + "/"]
    assert [d for d in settings["allowed_directories"] if "gristmill-sql-" not in d] == lakes


def test_a_symlink_in_the_own_lake_does_not_reach_another_lake(ws):
    lake, other = ws.lake("shop"), ws.lake("other")
    (lake / "stolen.bin").symlink_to(other / "customers.parquet")
    (lake / "door").symlink_to(other, target_is_directory=True)
    assert "Permission" in refused(ws, f"select * from read_parquet('{lake}/stolen.bin')")
    assert "Permission" in refused(ws, f"select * from read_parquet('{lake}/door/customers.parquet')")
    (lake / "stolen.parquet").symlink_to(other / "customers.parquet")  # picked up as a view: refused too
    assert "Permission" in refused(ws, "select * from stolen")


def test_a_symlink_to_an_own_file_is_fine(ws):
    (ws.lake("shop") / "alias.parquet").symlink_to(ws.lake("shop") / "customers.parquet")
    assert run(ws, "select count(*) from alias")["rows"] == [[5]]


def test_bad_project_names_are_refused(ws):
    with pytest.raises(GristmillError, match="invalid project name"):
        run(ws, "select 1", also=["../other"])


def test_rows_are_capped_at_max_rows(ws):
    result = run(ws, "select id from customers order by id", max_rows=3)
    assert result == {"columns": ["id"], "rows": [[1], [2], [3]], "truncated": True, "row_limit": 3}
    assert run(ws, "select id from customers", max_rows=5)["truncated"] is False
    big = run(ws, "select * from range(10000000)", max_rows=2)
    assert big["rows"] == [[0], [1]] and big["truncated"] is True


def test_a_slow_query_is_stopped_after_max_seconds(ws):
    started = time.monotonic()
    with pytest.raises(GristmillError, match=r"query ran past 0.5 seconds"):
        run(ws, "select count(*) from range(10000000000)", max_seconds=0.5)
    assert time.monotonic() - started < 5


def test_bad_limits_are_refused(ws):
    with pytest.raises(GristmillError, match="max_rows"):
        run(ws, "select 1", max_rows=0)
    with pytest.raises(GristmillError, match="max_seconds"):
        run(ws, "select 1", max_seconds=0)


def test_a_syntax_error_is_one_line(ws):
    assert refused(ws, "selec 1").startswith("query failed: Parser Error")


def test_values_are_json_serialisable(ws):
    query = ("select timestamp '2024-01-02 03:04:05' as ts, timestamptz '2024-01-02 03:04:05+00' as tz, "
             "date '2024-01-02' as d, time '03:04:05' as t, 1.25::decimal(10, 2) as dec, "
             "'\\x01\\xff'::blob as b, 'nan'::double as nan, [1, 2] as l, {'k': date '2024-01-02'} as s, "
             "map {'a': 1} as m, interval 1 day as i, uuid '00000000-0000-0000-0000-000000000001' as u, "
             "123456789012345678901234567890::hugeint as h")
    result = run(ws, query)
    json.dumps(result, allow_nan=False)
    row = dict(zip(result["columns"], result["rows"][0]))
    assert row["ts"] == "2024-01-02T03:04:05" and row["tz"].startswith("2024-01-02T03:04:05")
    assert (row["d"], row["t"], row["dec"], row["b"]) == ("2024-01-02", "03:04:05", 1.25, "01ff")
    assert row["nan"] == "nan" and row["l"] == [1, 2] and row["s"] == {"k": "2024-01-02"}
    assert row["m"] == {"a": 1} and row["i"] == "1 day, 0:00:00"
    assert row["u"] == "00000000-0000-0000-0000-000000000001" and row["h"] == 123456789012345678901234567890


def test_an_ingested_project_with_its_quarantine_and_records(ws, tmp_path):
    from ingestion import SourceSpec, ingest

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders.csv").write_text("id,amount\n1,2.5\n2,3.5\n3\n4,1.0\n")
    ingest([SourceSpec(path=folder)], project="shop", lake_dir=ws.lake("shop"), catalog=ws.catalog)
    assert run(ws, "select id from orders order by id")["rows"] == [[1], [2], [4]]
    assert run(ws, "select table_name, line, raw from _quarantine")["rows"] == [["orders", 4, "3"]]
    assert run(ws, "select name, rows from _tables")["rows"] == [["orders", 3]]
    assert run(ws, "select count(*) > 0 from _lineage")["rows"] == [[True]]
    assert run(ws, "select count(*) from _ingest_runs")["rows"] == [[1]]
    # once a lake has _catalog.json its views come from there: a loose Parquet file is no table
    assert (ws.lake("shop") / "customers.parquet").is_file()
    assert "customers" in refused(ws, "select * from customers")


def test_the_catalog_file_is_not_opened(ws):
    """Another process holds the catalog's write lock: the sandbox does not care."""
    hold = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(ws.catalog)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert run(ws, "select count(*) from customers")["rows"] == [[5]]
    finally:
        holder.communicate("")
