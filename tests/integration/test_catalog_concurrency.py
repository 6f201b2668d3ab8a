"""Eight real processes ingest and query one workspace at once: no lock error, every row accounted for.

Five users ingest (two pairs into the same project, from different folders, plus a third project),
two query through ``gristmill sql`` and one builds training tables, all through the real CLI or the
real Python entry points, each command its own process, eight running at any time. Each ingester
rewrites its file between rounds; every reader must see one whole round (never an error, never a
mix), and at the end every table holds its last round's rows, its quarantined row and its runs, in
the lake and in the catalog file alike. ``test_team_mode_writers_share_a_postgresql_lock`` repeats
the writers with the workspace in team mode (PostgreSQL metadata, advisory lock).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from gristmill.cli import main; main()"]
ROUNDS = [40, 95, 60]  #: good rows of each round's file (plus one row that is quarantined)
#: ingesting user -> (project, table): two users share project alpha, two share beta
INGESTERS = {"u0": ("alpha", "a0"), "u1": ("alpha", "a1"), "u2": ("beta", "b2"),
             "u3": ("gamma", "g3"), "u4": ("beta", "b4")}
LOCK_WORDS = ("lock", "conflicting", "busy")


def _write(folder: Path, table: str, rows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id,amount,ts"] + [f"{i},{i * 1.5},2026-01-{1 + i % 28:02d} 10:00:00" for i in range(rows)]
    lines.append("999999")  # a short row: quarantined, and counted
    (folder / f"{table}.csv").write_text("\n".join(lines) + "\n")


def _env(ws_root: Path, extra: dict | None = None) -> dict:
    env = dict(os.environ, GRISTMILL_WORKSPACE=str(ws_root), PYTHONPATH=f"{ROOT / 'platform'}:{ROOT}",
               GRISTMILL_FEATURE_REPO=str(ws_root.parent / "feature_repo"),
               GRISTMILL_BENTOS=str(ws_root.parent / "bentos"), DO_NOT_TRACK="1")
    env.pop("GRISTMILL_METADATA_URL", None)
    return env | (extra or {})


class Runs:
    """Every command run, its exit code and output; the failures as one readable list."""

    def __init__(self, env: dict):
        self.env, self.lock, self.failures, self.count = env, threading.Lock(), [], 0

    def run(self, args: list[str]) -> str:
        began = time.monotonic()
        done = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=300)
        with self.lock:
            self.count += 1
            self.slowest = max(getattr(self, "slowest", 0.0), time.monotonic() - began)
            text = (done.stdout + done.stderr).lower()
            if done.returncode != 0 or any(w in done.stderr.lower() for w in LOCK_WORDS):
                self.failures.append(f"{' '.join(args[3:])[:80]} -> {done.returncode}: "
                                     f"{done.stderr.strip()[-400:] or text[-400:]}")
        return done.stdout


def _sql(runs: Runs, project: str, query: str) -> list[dict]:
    out = runs.run(CLI + ["sql", project, query, "--json"])
    return json.loads(out)["rows"] if out.strip() else []


def _ingest(runs: Runs, src: Path, user: str) -> None:
    project, _ = INGESTERS[user]
    runs.run(CLI + ["ingest", project, str(src / user), "--json"])


BUILD = """
import sys
from gristmill.features.tables import build_feature_tables
from gristmill.spec import load_spec
from gristmill.workspace import Workspace
import duckdb
ws, spec = Workspace.resolve(), load_spec(sys.argv[1])
for _ in range(int(sys.argv[2])):
    m = build_feature_tables(ws, spec)
    n = duckdb.execute("select count(*) from read_parquet(?)", [m.labels_path]).fetchall()[0][0]
    print(n, flush=True)
"""

SPEC = """
project: alpha
sources: [{path: /nonexistent}]
entity: {name: thing, key: id}
features: [{table: a0, timestamp: ts, kind: events}]
label: {table: a1, target: amount, timestamp: ts}
"""


def _scenario(tmp_path: Path, env_extra: dict | None = None, readers: bool = True) -> tuple[Runs, Path, dict]:
    started = time.monotonic()
    ws_root, src = tmp_path / "ws", tmp_path / "src"
    runs = Runs(_env(ws_root, env_extra))
    for user, (_, table) in INGESTERS.items():  # round 0, one at a time: every table exists
        _write(src / user, table, ROUNDS[0])
        _ingest(runs, src, user)
    assert not runs.failures, runs.failures
    print(f"round 0, one at a time: {runs.count} commands, {time.monotonic() - started:.0f} s")
    spec = tmp_path / "alpha.yaml"
    spec.write_text(SPEC)
    done = threading.Event()
    seen: dict[str, list] = {"alpha": [], "beta": [], "gamma": [], "labels": []}

    def ingester(user: str) -> None:
        for rows in ROUNDS[1:]:
            _write(src / user, INGESTERS[user][1], rows)
            _ingest(runs, src, user)

    def reader_alpha() -> None:
        while not done.is_set() or not seen["alpha"]:
            seen["alpha"] += _sql(runs, "alpha", "select (select count(*) from a0) a0, (select count(*) from a1) a1")

    def reader_other() -> None:
        while not done.is_set() or not seen["beta"]:
            seen["beta"] += _sql(runs, "beta", "select (select count(*) from b2) b2, (select count(*) from b4) b4")
            seen["gamma"] += _sql(runs, "gamma", "select count(*) g3 from g3")

    def builder() -> None:
        while not done.is_set() or not seen["labels"]:
            out = runs.run([sys.executable, "-c", BUILD, str(spec), "2"])
            seen["labels"] += [int(line) for line in out.split()]

    writers = [threading.Thread(target=ingester, args=(u,)) for u in INGESTERS]
    others = [threading.Thread(target=f) for f in (reader_alpha, reader_other, builder)] if readers else []
    for thread in writers + others:
        thread.start()
    for thread in writers:
        thread.join(timeout=300)
    done.set()
    for thread in others:
        thread.join(timeout=300)
    print(f"all: {runs.count} commands, {time.monotonic() - started:.0f} s, slowest {runs.slowest:.1f} s")
    return runs, ws_root, seen


def _check_final(runs: Runs, ws_root: Path) -> None:
    """The lake (through ``gristmill sql``) and the catalog file agree: the last round, whole."""
    import duckdb

    last = ROUNDS[-1]
    for user, (project, table) in INGESTERS.items():
        got = _sql(runs, project, f"select (select count(*) from {table}) n, "
                                  f"(select count(*) from _quarantine where table_name = '{table}') q, "
                                  f"(select count(*) from _ingest_runs) r")
        assert got and got[0]["n"] == last and got[0]["q"] == 1, (user, got)
    runs_per_project = {"alpha": 2 * len(ROUNDS), "beta": 2 * len(ROUNDS), "gamma": len(ROUNDS)}
    for project, expected in runs_per_project.items():
        assert _sql(runs, project, "select count(*) r from _ingest_runs")[0]["r"] == expected, project
    con = duckdb.connect(str(ws_root / "catalog.duckdb"), read_only=True)
    try:
        for project, table in INGESTERS.values():
            assert con.execute(f'select count(*) from "{project}"."{table}"').fetchone()[0] == last
            assert con.execute(f'select count(*) from "{project}"."_quarantine" '
                               f"where table_name = '{table}'").fetchone()[0] == 1
    finally:
        con.close()


@pytest.mark.slow
def test_eight_processes_ingest_and_query_one_workspace(tmp_path):
    started = time.monotonic()
    runs, ws_root, seen = _scenario(tmp_path)
    assert not runs.failures, "\n".join(runs.failures)
    assert not runs.failures
    # every read saw whole rounds: a count is one round's rows, never an error or a mix
    rounds = set(ROUNDS)
    assert seen["alpha"] and all(r["a0"] in rounds and r["a1"] in rounds for r in seen["alpha"])
    assert seen["beta"] and all(r["b2"] in rounds and r["b4"] in rounds for r in seen["beta"])
    assert seen["gamma"] and all(r["g3"] in rounds for r in seen["gamma"])
    assert seen["labels"] and set(seen["labels"]) <= rounds, seen["labels"]
    _check_final(runs, ws_root)
    print(f"{runs.count} commands, {time.monotonic() - started:.0f} s")


def _postgres_url() -> str | None:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=root dbname=postgres", connect_timeout=3):
            pass
    except Exception:
        return None
    return "postgresql://root@127.0.0.1:5432/postgres"


@pytest.mark.slow
@pytest.mark.integration
def test_team_mode_writers_share_a_postgresql_lock(tmp_path):
    """Team mode: the same writers, the workspace's metadata in PostgreSQL, so every catalog write
    and every project's ingestion also holds a PostgreSQL advisory lock."""
    import psycopg

    url = _postgres_url()
    if url is None:
        pytest.fail("PostgreSQL on 127.0.0.1:5432 (user root, trust) is required")
    name = f"gm_catalog_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        team = url.rsplit("/", 1)[0] + "/" + name
        runs, ws_root, _ = _scenario(tmp_path, {"GRISTMILL_METADATA_URL": team}, readers=False)
        assert not runs.failures, "\n".join(runs.failures)
        _check_final(runs, ws_root)
        # a writer on another machine is seen only through PostgreSQL: hold its lock, ingest waits,
        # then stops with one line naming the holder
        import sqlalchemy as sa

        from gristmill.catalog import pg_lock

        engine = sa.create_engine("postgresql+psycopg://" + team.split("://", 1)[1])
        try:
            with pg_lock(engine, "catalog", "the DuckDB catalog", 5):
                _write(tmp_path / "src" / "u3", "g3", 7)
                done = subprocess.run(CLI + ["ingest", "gamma", str(tmp_path / "src" / "u3")],
                                      env=runs.env | {"GRISTMILL_CATALOG_TIMEOUT": "1"},
                                      capture_output=True, text=True, timeout=120)
        finally:
            engine.dispose()
        assert done.returncode == 1, done.stderr
        line = done.stderr.strip()
        assert "\n" not in line and "Traceback" not in line, line
        assert "the DuckDB catalog" in line and "is busy: held by gristmill pid" in line, line
        assert "(PostgreSQL advisory lock); waited 1 s" in line, line
        assert line.startswith("error: ingested into the lake"), line
        assert _sql(runs, "gamma", "select count(*) n from g3")[0]["n"] == 7  # the lake has the run
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
