"""Shared fixtures: every test gets its own workspace, feature repo and bentos folder."""

from __future__ import annotations

import os
import socket
import tempfile

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
# the CLI under test works locally unless a test points it at a server: no stored login of the
# person running the tests, no server from their environment
os.environ["GRISTMILL_CONFIG_DIR"] = tempfile.mkdtemp(prefix="gristmill-config-")
for _name in ("GRISTMILL_URL", "GRISTMILL_TOKEN", "GRISTMILL_METADATA_URL"):
    os.environ.pop(_name, None)


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
