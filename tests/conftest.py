"""Shared fixtures: every test gets its own workspace, feature repo and bentos folder."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
# the CLI under test works locally unless a test points it at a server: no stored login of the
# person running the tests, no server from their environment
os.environ["GRISTMILL_CONFIG_DIR"] = tempfile.mkdtemp(prefix="gristmill-config-")
# BentoML's model and bento stores (`gristmill deploy` copies models there): not the user's ~/bentoml
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="gristmill-bentoml-")
for _name in ("GRISTMILL_URL", "GRISTMILL_TOKEN", "GRISTMILL_METADATA_URL", "GRISTMILL_BROKER_URL", "GRISTMILL_MLFLOW_TRACKING",
              "GRISTMILL_OPTUNA_STORAGE"):
    os.environ.pop(_name, None)
# MLflow's process-wide state: set_tracking_uri / set_registry_uri / set_experiment also write these
# variables (so that subprocesses inherit them); a test's subprocess env copied from os.environ would
# carry an earlier test's workspace into the next one
MLFLOW_GLOBALS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME",
                  "MLFLOW_RUN_ID")
for _name in MLFLOW_GLOBALS:
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _mlflow_process_state():
    """Undo what a test left in MLflow's process-wide state: the ``MLFLOW_*`` variables above and the
    tracking URI, registry URI and active experiment held in MLflow's modules (in-process product
    code calls ``configure_mlflow``, which sets them)."""
    import sys

    saved = {name: os.environ.get(name) for name in MLFLOW_GLOBALS}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if "mlflow" not in sys.modules:
        return
    import mlflow
    from mlflow.tracking import _model_registry, _tracking_service, fluent

    while mlflow.active_run() is not None:
        mlflow.end_run()
    _tracking_service.utils._tracking_uri = None
    _model_registry.utils._registry_uri = None
    fluent._active_experiment_id = None


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """An isolated Gristmill workspace (env vars point every store into ``tmp_path``)."""
    from gristmill.workspace import Workspace

    monkeypatch.setenv("GRISTMILL_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("GRISTMILL_FEATURE_REPO", str(tmp_path / "feature_repo"))
    monkeypatch.setenv("GRISTMILL_BENTOS", str(tmp_path / "bentos"))
    return Workspace.resolve().ensure()


@pytest.fixture
def free_port() -> int:
    return _port()


@pytest.fixture(scope="session")
def end_team_database():
    """``end(db, saved)``: put back the environment variables in ``saved`` (None: unset), drop the
    metadata engines on ``db`` and the PostgreSQL database itself (a team-mode test's teardown)."""
    def end(db: str, saved: dict) -> None:
        import psycopg

        from gristmill.metadata import db as mdb

        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for key, found in list(mdb._engines.items()):
            if db in key:
                found.engine.dispose()
                del mdb._engines[key]
        with psycopg.connect("host=127.0.0.1 user=root dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    return end


@pytest.fixture(scope="session")
def add_tables():
    """Register pandas frames as a project's tables, the way ingestion leaves them (Parquet + view)."""

    def add(ws, project: str, tables: dict):
        from gristmill.sql import connect, ident, literal

        lake = ws.lake(project)
        lake.mkdir(parents=True, exist_ok=True)
        con = connect(ws.catalog)
        try:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(project)}")
            for name, frame in tables.items():
                path = lake / f"{name}.parquet"
                frame.to_parquet(path, index=False, coerce_timestamps="us")
                con.execute(f"CREATE OR REPLACE VIEW {ident(project)}.{ident(name)} AS "
                            f"SELECT * FROM read_parquet({literal(path)})")
        finally:
            con.close()

    return add


# -- a team in a workspace (identity, server and serving tests) ----------------------------------
SHOP_SPEC = """
project: shop
sources: [{path: /nonexistent}]
entity: {name: customer, key: customer_id}
features: [{table: orders, timestamp: ts, kind: events}]
label: {table: labels, target: churned, timestamp: as_of}
"""


@dataclass
class Team:
    ws: object
    tokens: dict[str, str | None]   # principal name -> bearer token (None: no header)
    ids: dict[str, str]             # user -> their user token's id

    def headers(self, who: str) -> dict[str, str]:
        token = self.tokens[who]
        return {"Authorization": f"Bearer {token}"} if token else {}


def _expire(ws, token_id: str) -> None:
    from gristmill.config import metadata
    from gristmill.metadata.db import tokens

    with metadata(ws).engine.begin() as conn:
        conn.execute(tokens.update().where(tokens.c.id == token_id).values(expires_at="2020-01-01T00:00:00+00:00"))


def make_team(ws, add_tables) -> Team:
    from gristmill.services import Context, invoke

    local = Context.local(ws)
    made = {name: invoke(local, "users.add", name=name, admin=(name == "ada"),
                         password=f"{name}-password")
            for name in ("ada", "olga", "ed", "vi", "mo", "tmp")}
    olga = Context(ws, _principal(ws, made["olga"]["token"]))
    import pandas as pd

    add_tables(ws, "shop", {"orders": pd.DataFrame({"customer_id": ["a", "b"], "amount": [1.0, 2.0],
                                                    "ts": pd.to_datetime(["2026-01-01", "2026-01-02"])})})
    add_tables(ws, "other", {"secrets": pd.DataFrame({"customer_id": ["x"], "salary": [99.0]})})
    invoke(olga, "projects.register", project="shop", spec=SHOP_SPEC)
    invoke(olga, "projects.share", project="shop", user="ed", role="editor")
    invoke(olga, "projects.share", project="shop", user="vi", role="viewer")
    mo = Context(ws, _principal(ws, made["mo"]["token"]))
    invoke(mo, "projects.register", project="other", spec=SHOP_SPEC.replace("project: shop", "project: other"))
    expired = invoke(local, "tokens.create", user="vi", label="expired")
    _expire(ws, expired["id"])
    revoked = invoke(local, "tokens.create", user="vi", label="revoked")
    invoke(local, "tokens.revoke", token_id=revoked["id"])
    shop_viewer = invoke(olga, "tokens.create", project="shop", role="viewer", label="scoped")
    tokens = {name: made[name]["token"] for name in ("ada", "olga", "ed", "vi", "mo")}
    tokens |= {"none": None, "malformed": "not-a-token", "unknown": "gm_0123456789abcdef_nothing",
               "expired": expired["token"], "revoked": revoked["token"], "shop_viewer_token": shop_viewer["token"]}
    return Team(ws, tokens, {name: made[name]["token_id"] for name in made})


def _principal(ws, token: str):
    from gristmill.config import metadata
    from gristmill.identity.store import authenticate

    return authenticate(metadata(ws), token)


@pytest.fixture
def team(workspace, add_tables) -> "Team":
    return make_team(workspace, add_tables)


@pytest.fixture(scope="session")
def team_maker():
    """:func:`make_team` for fixtures of a wider scope than ``team`` (one server for a module)."""
    return make_team




# -- real server processes (e2e and integration tests) -------------------------------------------
def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def spawn_ready(args: list[str], cwd, env: dict, log_path: Path, ready_seconds: float = 120):
    """Start a server process (``--port`` is appended; its output goes to ``log_path``: a pipe nobody
    reads would fill and stall it) and wait until ``/readyz`` answers; returns (process, base URL)."""
    import httpx

    port = _port()
    log = log_path.open("wb")
    proc = subprocess.Popen([*args, "--port", str(port)], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"{args} exited:\n{_tail(log_path)}")
        time.sleep(0.5)
    stop_process(proc)
    raise AssertionError(f"{args} did not become ready in {ready_seconds:.0f} s:\n{_tail(log_path)}")


@contextlib.contextmanager
def running_server(args: list[str], cwd, env: dict, log_path: Path, ready_seconds: float = 120):
    """A server process until the block ends (see :func:`spawn_ready`); yields its base URL."""
    proc, base = spawn_ready(args, cwd, env, log_path, ready_seconds)
    try:
        yield base
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def start_server():
    """``with start_server(args, cwd, env, log_path) as base_url:`` (see :func:`running_server`)."""
    return running_server


@pytest.fixture
def start_worker(tmp_path):
    """``start_worker(env, name, slots=1)``: a real ``gristmill worker`` process on the workspace of
    ``env``, ready (its heartbeat recorded); stopped at the end of the test. Returns its Popen."""
    import sys

    started = []

    def start(env: dict, name: str, slots: int = 1, extra: list[str] | None = None) -> subprocess.Popen:
        gristmill = str(Path(sys.executable).parent / "gristmill")
        proc, _ = spawn_ready([gristmill, "worker", "--name", name, "--slots", str(slots), *(extra or [])],
                              tmp_path, env, tmp_path / f"worker-{name}.log", ready_seconds=60)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_process(proc)
