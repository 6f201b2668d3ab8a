"""`gristmill new "<sentence>" --data FOLDER --yes` on a small CRM export built here (no label
table: the lead-scoring template builds it from the activities), through to a trained, gated,
deployed model; and `--yes` with an open question ends in one line and exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _leads(folder):
    """The CRM export of the understanding's unit tests (one generator for both)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "unit" / "gristmill" / "requirements" / "test_understand.py"
    spec = importlib.util.spec_from_file_location("_understand_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._leads(folder)


def _gristmill(tmp_path, *args):
    env = {**__import__("os").environ, "GRISTMILL_WORKSPACE": str(tmp_path / "ws"),
           "GRISTMILL_FEATURE_REPO": str(tmp_path / "fr"), "GRISTMILL_BENTOS": str(tmp_path / "bentos")}
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)


def test_new_from_a_sentence_trains_and_deploys(tmp_path):
    _leads(tmp_path / "crm")
    done = _gristmill(tmp_path, "new", "score which leads will convert within 2 weeks, AUC > 0.5",
                      "--data", str(tmp_path / "crm"), "--project", "leads", "--budget", "20", "--yes",
                      "--no-embeddings", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["template"] == "lead_scoring" and not out["questions"]
    assert any("label built from events" in n for n in out["notes"])
    from gristmill.spec import load_spec

    spec = load_spec(tmp_path / "leads.yaml")
    assert spec.label.table == "lead_scoring_labels" and spec.training.gate.min == {"roc_auc": 0.5}
    assert spec.training.cv == "time"
    train = out["run"]["train"]
    assert train["gate"]["status"] in ("passed", "failed") and train["version"] == "1"
    assert out["run"]["bento"] or train["alias"] == "rejected"
    # the training's evaluation report: its paths in the JSON, the gate's checks inside
    report = json.loads(Path(train["evaluation"]["json"]).read_text())
    assert report["metric"] == "roc_auc" and report["metrics"]["roc_auc"]["interval"]
    assert report["gate"]["status"] == train["gate"]["status"] and Path(train["evaluation"]["html"]).is_file()


def test_yes_with_an_open_question_exits_with_one_line(tmp_path):
    _leads(tmp_path / "crm")
    done = _gristmill(tmp_path, "new", "make our numbers better", "--data", str(tmp_path / "crm"),
                      "--project", "vague", "--yes", "--no-embeddings")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: question template:") and "Traceback" not in done.stderr
