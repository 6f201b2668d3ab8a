"""Safe access to the workspace's DuckDB catalog and lake for many processes at once.

A DuckDB file admits one read-write process, and while it is open for writing no other process can
open it even read-only. So (see docs/concurrency.md for the measurements behind this):

- **Readers never open the catalog.** :func:`lake_reader` gives an in-memory DuckDB database holding
  the views of the asked projects, derived from each lake's ``_catalog.json`` (the same SQL the
  catalog holds). ``gristmill sql`` (``gristmill.sandbox``), feature-table building, suggestions and
  monitoring read through it: no reader waits for a writer, none blocks one.
- **Writers hold the catalog for milliseconds.** :func:`write_catalog` runs a few DDL statements
  (``CREATE OR REPLACE VIEW`` over the Parquet lake, ``DROP SCHEMA``) in one transaction on a
  connection opened and closed around them, under an exclusive lock (:func:`exclusive`): an
  ``fcntl`` lock on ``catalog.duckdb.lock`` and, in team mode (PostgreSQL metadata), a PostgreSQL
  advisory lock too, so writers on several machines take turns. The heavy work (reading files,
  writing Parquet) happens before, with the catalog closed.
- **One ingestion per project at a time.** :func:`project_lock` serialises runs that read and
  rewrite the same ``_catalog.json``; runs of different projects go on in parallel.

A lock not had within its timeout is a one-line :class:`LockBusy` naming the holder (pid, host,
command, since when).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import zlib
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path

from gristmill.errors import GristmillError

CATALOG_TIMEOUT_ENV = "GRISTMILL_CATALOG_TIMEOUT"  #: seconds a catalog write waits for its turn
PROJECT_TIMEOUT_ENV = "GRISTMILL_INGEST_LOCK_TIMEOUT"  #: seconds an ingestion waits for its project
CATALOG_TIMEOUT = 60.0
PROJECT_TIMEOUT = 1800.0  # another ingestion of the same project may take this long
PG_LOCK_CLASS = 727100  #: first key of every PostgreSQL advisory lock taken here


class LockBusy(GristmillError):
    """A lock was not had within its timeout; the message names who holds it."""

    http_status = 409


def lock_timeout(env: str, default: float) -> float:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise GristmillError(f"{env} must be a number of seconds above 0, not {raw!r}")
    return value


def holder() -> dict:
    """Who this process is, as written into a lock it holds."""
    command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:120]
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command or "python",
            "since": datetime.now(timezone.utc).strftime("%H:%M:%S UTC")}


def describe(info: dict | None) -> str:
    if not info:
        return "held by another process"
    return (f"held by pid {info.get('pid', '?')} on {info.get('host', '?')} "
            f"({info.get('command', '?')}) since {info.get('since', '?')}")


# -- file locks -----------------------------------------------------------------------------------
@contextmanager
def file_lock(path: Path, what: str, timeout: float, env: str = CATALOG_TIMEOUT_ENV):
    """Hold an exclusive ``fcntl`` lock on ``path`` (made owner-only) for the ``with`` block.

    Waits up to ``timeout`` seconds, then raises :class:`LockBusy` naming the holder, which every
    holder writes into the file. The kernel drops the lock when its process dies (even kill -9).
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline, pause = time.monotonic() + timeout, 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(f"{what} is busy: {describe(_read_holder(fd))}; waited {timeout:g} s "
                                   f"(try again, or raise {env})") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict | None:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "null")
    except (OSError, ValueError):
        return None


# -- PostgreSQL advisory locks (team mode) --------------------------------------------------------
def pg_key(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@contextmanager
def pg_lock(engine, name: str, what: str, timeout: float, env: str = CATALOG_TIMEOUT_ENV):
    """Hold the session advisory lock ``(PG_LOCK_CLASS, pg_key(name))`` on ``engine``'s database.

    Every writer of a shared lake, on any machine, takes it; PostgreSQL drops it when the holder's
    connection ends (a killed process included). The holder is named through ``application_name``.
    """
    import sqlalchemy as sa

    key = pg_key(name)
    me = holder()
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT set_config('application_name', :n, false)"),
                     {"n": f"gristmill pid {me['pid']} on {me['host']} ({me['command']})"[:63]})
        conn.commit()
        deadline, pause = time.monotonic() + timeout, 0.005
        while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:c, :k)"),
                               {"c": PG_LOCK_CLASS, "k": key}).scalar():
            conn.commit()
            if time.monotonic() >= deadline:
                found = conn.execute(sa.text(
                    "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                    "AND l.classid = :c AND l.objid = :k AND l.objsubid = 2 AND l.granted LIMIT 1"),
                    {"c": PG_LOCK_CLASS, "k": key}).first()
                who = (f"held by {found[0] or 'a session'} from {found[1] or 'local socket'}"
                       if found else "held by another session")
                raise LockBusy(f"{what} is busy: {who} (PostgreSQL advisory lock); waited {timeout:g} s "
                               f"(try again, or raise {env})")
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:c, :k)"), {"c": PG_LOCK_CLASS, "k": key})
            conn.execute(sa.text("RESET application_name"))
            conn.commit()


def team_engine(root: Path):
    """The PostgreSQL engine of the workspace at ``root`` in team mode, else None."""
    from gristmill.config import load_config, metadata
    from gristmill.workspace import Workspace

    ws = Workspace(root, root, root)  # only the root matters to the configuration
    if not load_config(ws).server.metadata:
        return None
    return metadata(ws).engine


@contextmanager
def exclusive(root: Path, lock_file: Path, name: str, what: str, timeout: float, env: str):
    """The file lock and, when the workspace at ``root`` is in team mode, the PostgreSQL lock of the
    same ``name`` (file first, so one machine's processes queue locally)."""
    with file_lock(lock_file, what, timeout, env):
        engine = team_engine(root)
        with pg_lock(engine, name, what, timeout, env) if engine is not None else nullcontext():
            yield


# -- the catalog ----------------------------------------------------------------------------------
def catalog_lock_path(catalog: Path) -> Path:
    return catalog.with_name(catalog.name + ".lock")


@contextmanager
def catalog_writer(catalog: Path, timeout: float | None = None):
    """A read-write connection to ``catalog``, under the catalog's exclusive lock, closed on exit.

    Hold it only for metadata statements. A process outside Gristmill that keeps the file open (a
    DuckDB shell) is waited for too, up to the same timeout.
    """
    import duckdb

    wait = lock_timeout(CATALOG_TIMEOUT_ENV, CATALOG_TIMEOUT) if timeout is None else timeout
    with exclusive(catalog.parent, catalog_lock_path(catalog), "catalog", f"the DuckDB catalog {catalog}", wait,
                   CATALOG_TIMEOUT_ENV):
        deadline, pause = time.monotonic() + wait, 0.01
        catalog.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                con = duckdb.connect(str(catalog))
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    first = str(exc).strip().splitlines()[0]
                    raise LockBusy(f"the DuckDB catalog {catalog} is open in another program: {first}; "
                                   f"waited {wait:g} s (close it, or raise {CATALOG_TIMEOUT_ENV})") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        try:
            con.execute("SET TimeZone = 'UTC'")  # naive timestamps in the lake are UTC
            yield con
        finally:
            con.close()


def write_catalog(catalog: Path, statements: list[str], timeout: float | None = None) -> None:
    """Run ``statements`` on the catalog in one transaction (all or none), holding it briefly."""
    with catalog_writer(catalog, timeout) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


@contextmanager
def project_lock(lake: Path, project: str, timeout: float | None = None):
    """Hold project ``project``'s ingestion lock (``<lake>/_ingest.lock``) for the ``with`` block;
    ``lake`` is ``<workspace>/lake/<project>``."""
    wait = lock_timeout(PROJECT_TIMEOUT_ENV, PROJECT_TIMEOUT) if timeout is None else timeout
    with exclusive(lake.parent.parent, lake / "_ingest.lock", f"ingest:{project}", f"project {project!r} (another ingestion "
                   "or deletion)", wait, PROJECT_TIMEOUT_ENV):
        yield


# -- readers --------------------------------------------------------------------------------------
def lake_reader(ws, projects: list[str] | tuple[str, ...] | str):
    """An in-memory DuckDB connection with the views of ``projects`` read from their lakes.

    The catalog file is not opened, so this never waits for (nor blocks) a writer. Close it after
    use (``with closing(lake_reader(ws, "shop")) as con:``).
    """
    import duckdb

    from ingestion.catalog import project_statements

    names = [projects] if isinstance(projects, str) else list(projects)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")  # as the catalog: naive timestamps in the lake are UTC
        for project in dict.fromkeys(names):
            for statement in project_statements(project, ws.lake(project)):
                con.execute(statement)
    except Exception:
        con.close()
        raise
    return con
