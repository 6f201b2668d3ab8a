"""The catalog's locks (gristmill.catalog): waits, one-line timeouts naming the holder, readers that
never open the catalog file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from gristmill.catalog import (LockBusy, file_lock, lake_reader, lock_timeout, pg_lock, project_lock,
                               write_catalog)
from gristmill.errors import GristmillError

HOLD = """
import sys, time
from pathlib import Path
from gristmill.catalog import file_lock
with file_lock(Path(sys.argv[1]), "thing", 5):
    print("ready", flush=True)
    sys.stdin.read()
"""


def _holder(path: Path, script: str = HOLD, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_busy_lock_times_out_with_one_line_naming_the_holder(tmp_path):
    path = tmp_path / "x.lock"
    proc = _holder(path)
    try:
        began = time.monotonic()
        with pytest.raises(LockBusy) as caught:
            with file_lock(path, "the DuckDB catalog", 0.3):
                pass
        assert 0.3 <= time.monotonic() - began < 3
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith("the DuckDB catalog is busy: held by pid ")
        assert f"pid {proc.pid} on " in message and "waited 0.3 s" in message
        assert "GRISTMILL_CATALOG_TIMEOUT" in message
        assert isinstance(caught.value, GristmillError) and caught.value.http_status == 409
    finally:
        proc.communicate("")
    with file_lock(path, "the DuckDB catalog", 0.3):  # released by its holder: free again
        assert path.read_text().startswith("{")  # who holds it now
    assert path.read_text() == ""  # nobody


def test_a_killed_holder_frees_the_lock(tmp_path):
    path = tmp_path / "x.lock"
    proc = _holder(path)
    proc.kill()
    proc.wait()
    with file_lock(path, "thing", 2):
        pass
    proc.stdin.close()
    proc.stdout.close()


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(tmp_path):
    path = tmp_path / "x.lock"
    proc = _holder(path)
    import threading

    threading.Timer(0.3, proc.communicate, args=("",)).start()
    began = time.monotonic()
    with file_lock(path, "thing", 10):
        assert time.monotonic() - began >= 0.25
    proc.wait()


def test_lock_files_are_owner_only(tmp_path):
    path = tmp_path / "x.lock"
    with file_lock(path, "thing", 1):
        pass
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_bad_timeout_setting_is_a_one_line_mistake(monkeypatch):
    monkeypatch.setenv("GRISTMILL_CATALOG_TIMEOUT", "soon")
    with pytest.raises(GristmillError, match="GRISTMILL_CATALOG_TIMEOUT must be a number of seconds above 0"):
        lock_timeout("GRISTMILL_CATALOG_TIMEOUT", 60)
    monkeypatch.setenv("GRISTMILL_CATALOG_TIMEOUT", "2.5")
    assert lock_timeout("GRISTMILL_CATALOG_TIMEOUT", 60) == 2.5
    monkeypatch.delenv("GRISTMILL_CATALOG_TIMEOUT")
    assert lock_timeout("GRISTMILL_CATALOG_TIMEOUT", 60) == 60


def test_catalog_writes_are_one_transaction(tmp_path):
    import duckdb

    catalog = tmp_path / "catalog.duckdb"
    write_catalog(catalog, ["CREATE SCHEMA s", "CREATE VIEW s.v AS SELECT 1 AS x"])
    with pytest.raises(duckdb.Error):
        write_catalog(catalog, ["CREATE OR REPLACE VIEW s.v AS SELECT 2 AS x", "SELECT * FROM nowhere"])
    con = duckdb.connect(str(catalog), read_only=True)
    assert con.execute("SELECT x FROM s.v").fetchall() == [(1,)]  # the failed batch left nothing
    con.close()


def test_a_catalog_held_open_by_another_program_is_waited_for_then_named(tmp_path):
    catalog = tmp_path / "catalog.duckdb"
    hold = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "sys.stdin.read()")
    proc = _holder(catalog, hold)
    try:
        with pytest.raises(LockBusy, match=r"is open in another program: .*waited 0.5 s \(close it"):
            write_catalog(catalog, ["CREATE SCHEMA s"], timeout=0.5)
    finally:
        proc.communicate("")
    write_catalog(catalog, ["CREATE SCHEMA s"], timeout=5)


def test_one_ingestion_per_project_and_others_go_on(tmp_path):
    script = HOLD.replace('file_lock(Path(sys.argv[1]), "thing", 5)', 'project_lock(Path(sys.argv[1]), "shop", 5)')
    script = script.replace("import file_lock", "import project_lock")
    proc = _holder(tmp_path / "lake" / "shop", script)
    try:
        with pytest.raises(LockBusy, match="project 'shop' .* is busy: held by pid .*GRISTMILL_INGEST_LOCK_TIMEOUT"):
            with project_lock(tmp_path / "lake" / "shop", "shop", timeout=0.2):
                pass
        with project_lock(tmp_path / "lake" / "other", "other", timeout=0.2):  # another project: free
            pass
    finally:
        proc.communicate("")


def test_readers_never_open_the_catalog(workspace, add_tables):
    """While another process holds the catalog file for writing, lake_reader still reads."""
    import pandas as pd

    from ingestion import SourceSpec, ingest

    ws = workspace
    add_tables(ws, "loose", {"t": pd.DataFrame({"a": [1, 2]})})
    folder = ws.root.parent / "in"
    folder.mkdir()
    (folder / "orders.csv").write_text("id,amount\n1,2.5\n2,3.5\n")
    ingest([SourceSpec(path=folder)], project="shop", lake_dir=ws.lake("shop"), catalog=ws.catalog)
    hold = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "sys.stdin.read()")
    proc = _holder(ws.catalog, hold)
    try:
        con = lake_reader(ws, ["shop", "loose"])
        try:
            assert con.execute("SELECT count(*) FROM shop.orders").fetchall() == [(2,)]
            assert con.execute("SELECT count(*) FROM shop._ingest_runs").fetchall() == [(1,)]
            assert con.execute("SELECT sum(a) FROM loose.t").fetchall() == [(3,)]
        finally:
            con.close()
    finally:
        proc.communicate("")


def _pg_engine():
    import sqlalchemy as sa

    engine = sa.create_engine("postgresql+psycopg://root@127.0.0.1:5432/postgres")
    try:
        with engine.connect():
            pass
    except Exception:
        pytest.fail("PostgreSQL on 127.0.0.1:5432 (user root, trust) is required")
    return engine


@pytest.mark.integration
def test_the_postgresql_lock_times_out_naming_the_holding_session():
    engine = _pg_engine()
    name = f"test-{time.time_ns()}"
    with pg_lock(engine, name, "the DuckDB catalog", 1):
        with pytest.raises(LockBusy) as caught:
            with pg_lock(engine, name, "the DuckDB catalog", 0.3):
                pass
        message = str(caught.value)
        assert "\n" not in message and message.startswith("the DuckDB catalog is busy: held by gristmill pid ")
        assert "(PostgreSQL advisory lock); waited 0.3 s" in message
    with pg_lock(engine, name, "the DuckDB catalog", 0.3):  # released
        pass
    engine.dispose()
