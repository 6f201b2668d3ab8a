"""schemathesis against the real `gristmill server`'s OpenAPI document, as a viewer and as an
admin: no 5xx, and every response matches its documented schema and status codes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
import subprocess

import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture
def server(team, tmp_path, start_server):
    env = {**os.environ, "GRISTMILL_WORKSPACE": str(team.ws.root),
           "GRISTMILL_FEATURE_REPO": str(team.ws.feature_repo), "GRISTMILL_BENTOS": str(team.ws.bentos)}
    with start_server([str(BIN / "gristmill"), "server"], tmp_path, env, tmp_path / "server.log") as base:
        yield base, env


@pytest.mark.parametrize("caller,examples", [("vi", 30), ("ada", 15)])
def test_the_server_survives_property_based_requests(team, server, tmp_path, caller, examples):
    base, env = server
    # path parameters name the team's real project and user, so requests reach the operations
    (tmp_path / "schemathesis.toml").write_text('[parameters]\n"path.project" = "shop"\n"path.name" = "tmp"\n')
    out = subprocess.run(
        [str(BIN / "st"), "run", f"{base}/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,"
                     "content_type_conformance",
         "-H", f"Authorization: Bearer {team.tokens[caller]}",
         "--max-examples", str(examples), "--seed", "7", "--generation-database", "none",
         "--report-dir", str(tmp_path / "st"), "--request-timeout", "60"],
        capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-6000:]
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[-4000:]
