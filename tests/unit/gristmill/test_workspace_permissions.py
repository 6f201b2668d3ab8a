"""One real run of the CLI under umask 022 (ingest, features, training set, materialize, train,
deploy, drift): everything the workspace holds is owner-only (0600 files, 0700 folders), and the
lineage recorded on the way answers both ways."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BIN = Path(sys.executable).parent
SPEC = """
project: perms
sources: [{path: data}]
entity: {name: user, key: user_id}
features: [{table: events, timestamp: ts, kind: events}]
label: {table: labels, target: y, timestamp: as_of}
training: {budget_seconds: 5, trainers: [lightgbm]}
"""


def _open_to_others(root: Path) -> list[str]:
    loose = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            loose.append(f"{path.relative_to(root.parent)} {oct(mode)}")
    return loose


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("run")
    data = tmp_path / "data"
    data.mkdir()
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    pd.DataFrame({"user_id": [f"u{i % 30}" for i in range(600)], "ts": list(days) * 10,
                  "amount": [float(i % 17) for i in range(600)]}).to_csv(data / "events.csv", index=False)
    pd.DataFrame({"user_id": [f"u{i}" for i in range(30)] * 2,
                  "as_of": ["2024-02-01"] * 30 + ["2024-03-01"] * 30,
                  "y": [i % 2 for i in range(60)]}).to_csv(data / "labels.csv", index=False)
    (tmp_path / "perms.yaml").write_text(SPEC)
    env = {**os.environ, "GRISTMILL_WORKSPACE": str(tmp_path / "ws"),
           "GRISTMILL_FEATURE_REPO": str(tmp_path / "repo"), "GRISTMILL_BENTOS": str(tmp_path / "bentos"),
           "GRISTMILL_CONFIG_DIR": str(tmp_path / "config")}
    script = " && ".join([
        "umask 022",
        f"{BIN}/gristmill ingest perms.yaml",
        f"{BIN}/gristmill features apply perms",
        f"{BIN}/gristmill features dataset perms",
        f"{BIN}/gristmill features materialize perms",
        f"{BIN}/gristmill train perms --budget 5",
        f"{BIN}/gristmill deploy perms",
        f"{BIN}/gristmill users add alice --json > token.json",
    ])
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path, env


@pytest.mark.slow
def test_every_state_file_is_owner_only_under_umask_022(ran):
    tmp_path, _ = ran
    ws = tmp_path / "ws"
    for expected in ("catalog.duckdb", "gristmill.db", "mlflow/mlflow.db", "lake/perms/_catalog.json"):
        assert (ws / expected).exists(), expected
    assert list((ws / "optuna").glob("*")), "optuna journal"
    assert not _open_to_others(ws), _open_to_others(ws)


@pytest.mark.slow
def test_lineage_answers_what_made_a_model_and_what_a_file_fed(ran):
    import hashlib
    import json

    tmp_path, env = ran

    def lineage(*args):
        out = subprocess.run([str(BIN / "gristmill"), "lineage", "perms", *args, "--json"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    up = lineage("--model", "1")
    assert up["known"]
    sources = {e["src"].split(":")[0] for e in up["upstream"]}
    assert {"file", "table", "dataset"} <= sources
    sha = hashlib.sha256((tmp_path / "data" / "events.csv").read_bytes()).hexdigest()
    assert f"file:{sha}" in {e["src"] for e in up["upstream"]}
    assert {"deployment:perms"} <= {e["dst"] for e in up["downstream"]}
    down = lineage("--node", f"file:{sha}")
    reached = {e["dst"] for e in down["downstream"]}
    assert any(n.startswith("table:events@") for n in reached)
    assert "model:1" in reached and "deployment:perms" in reached
    audit = subprocess.run([str(BIN / "gristmill"), "audit", "--project", "perms", "--json"], env=env,
                           capture_output=True, text=True, timeout=120)
    actions = [r["action"] for r in json.loads(audit.stdout)["records"]]
    for action in ("projects.register", "data.ingest", "features.apply", "features.dataset",
                   "features.materialize", "models.train", "serving.deploy"):
        assert action in actions, (action, actions)


@pytest.mark.slow
def test_deleting_the_trained_project_removes_its_model_features_and_files(ran):
    """Runs last in this module: it deletes what the tests above read."""
    import json

    tmp_path, env = ran
    out = subprocess.run([str(BIN / "gristmill"), "projects", "delete", "perms", "--confirm", "perms", "--json"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    removed = json.loads(out.stdout)["removed"]
    for expected in ("registered model perms", "MLflow experiment gristmill/perms", "DuckDB schema perms"):
        assert expected in removed, removed
    assert any(r.startswith("feature views: perms__") for r in removed), removed
    assert not (tmp_path / "ws" / "lake" / "perms").exists()
    assert not (tmp_path / "bentos" / "perms").exists()
    listed = subprocess.run([str(BIN / "gristmill"), "models", "list", "perms"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 1 and listed.stderr.count("\n") == 1


def test_the_stored_login_is_owner_only_under_umask_022(tmp_path, monkeypatch):
    from gristmill.client import credentials

    monkeypatch.setenv("GRISTMILL_CONFIG_DIR", str(tmp_path / "cfg"))
    old = os.umask(0o022)
    try:
        path = credentials.save("http://127.0.0.1:8700", "gm_x_y", "alice")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
