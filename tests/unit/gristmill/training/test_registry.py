"""The promotion gate, promotion and rollback on real MLflow registrations of small trained models."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gristmill.spec import parse_spec
from gristmill.training import registry
from gristmill.training.train import train


def _spec(project: str, margin: float = 0.0):
    return parse_spec({
        "project": project,
        "sources": [{"path": "unused"}],
        "entity": {"name": "thing", "key": "thing_id"},
        "features": [{"table": "t"}],
        "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
        "training": {"task": "binary", "budget_seconds": 5, "max_trials": 1, "promotion_margin": margin},
    }, "t.yaml")


def _dataset(ws, project: str, name: str, noise: float):
    """Binary data; ``noise`` is the share of labels flipped at random (more noise, worse model)."""
    rng = np.random.default_rng(7)
    n = 600
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = (x1 + 0.5 * x2 > 0).astype(int)
    flip = rng.random(n) < noise
    y = np.where(flip, 1 - y, y)
    frame = pd.DataFrame({"thing_id": [f"id{i}" for i in range(n)],
                          "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
                          "y": np.where(y == 1, "Yes", "No"), "t__x1": x1, "t__x2": x2})
    out = ws.datasets(project)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return name, path


def gristmill(*args):
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """Project ``gate``: v1 and v2 trained on the same data with the same seed and one trial (the
    second training resumes the first's study), so v2 is the same model, no better, and stays
    challenger. Tests that move aliases come last in this file."""
    from gristmill.workspace import Workspace

    root = tmp_path_factory.mktemp("gate")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRISTMILL_WORKSPACE", str(root / "ws"))
        mp.setenv("GRISTMILL_FEATURE_REPO", str(root / "feature_repo"))
        mp.setenv("GRISTMILL_BENTOS", str(root / "bentos"))
        ws = Workspace.resolve().ensure()
        first = train(ws, _spec("gate"), *_dataset(ws, "gate", "clean", 0.0))
        second = train(ws, _spec("gate"), *_dataset(ws, "gate", "clean", 0.0))
        yield ws, first, second


def test_first_model_is_champion_and_one_no_better_stays_challenger(gate):
    ws, first, second = gate
    assert (first.version, first.alias) == ("1", "champion")
    assert (second.version, second.alias) == ("2", "challenger")
    assert second.promotion["champion_score"] == pytest.approx(second.promotion["score"])
    assert "does not beat the champion" in second.promotion["reason"]
    # both were refitted on every row, holdout included: v1's recorded holdout score stands in
    assert "recorded score on the same holdout rows" in second.promotion["reason"]
    listed = {v["version"]: v for v in registry.versions(ws, "gate")}
    assert listed["1"]["aliases"] == ["champion"] and listed["2"]["aliases"] == ["challenger"]
    assert set(listed["2"]["scores"]) == {"holdout_roc_auc"}
    moves = registry.history(ws, "gate")
    assert [(m["action"], m["alias"], m["to_version"]) for m in moves] == [
        ("train", "champion", "1"), ("train", "challenger", "2")]


@pytest.mark.parametrize("higher,score,champion,margin,alias", [
    (True, 0.61, 0.83, 0.0, "challenger"),   # worse AUC
    (True, 0.83, 0.83, 0.0, "challenger"),   # a tie does not beat
    (True, 0.85, 0.83, 0.0, "champion"),
    (True, 0.85, 0.83, 0.05, "challenger"),  # better, but not by the margin
    (False, 2.0, 1.5, 0.0, "challenger"),    # rmse: lower is better
    (False, 1.0, 1.5, 0.2, "champion"),
])
def test_the_gate_compares_in_the_metrics_direction(higher, score, champion, margin, alias):
    assert registry.judge(True, "m", higher, score, champion, margin)[0] == alias
    assert registry.judge(False, "m", higher, score, None, margin) == (
        "champion", "first model of the project")


def test_a_better_model_wins_unless_the_margin_says_otherwise(workspace):
    project = "better"
    train(workspace, _spec(project), *_dataset(workspace, project, "noisy", 0.45))
    strict = train(workspace, _spec(project, margin=1.0), *_dataset(workspace, project, "clean", 0.0))
    assert strict.alias == "challenger" and "margin 1" in strict.promotion["reason"]
    better = train(workspace, _spec(project), *_dataset(workspace, project, "clean", 0.0))
    assert better.alias == "champion" and better.promotion["previous_champion"] == "1"


def test_mistakes_are_one_line(gate):
    for args, needle in [(("models", "rollback", "gate"), "no earlier champion"),
                         (("models", "promote", "gate", "--version", "9"), "has no version 9 (versions: 1, 2)"),
                         (("models", "list", "nosuch"), "has no registered model")]:
        out = gristmill(*args)
        assert out.returncode == 1 and needle in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_promote_and_rollback_through_the_cli(gate):
    out = gristmill("models", "promote", "gate", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["to_version"] == "2"
    listed = json.loads(gristmill("models", "list", "gate", "--json").stdout)["versions"]
    assert {v["version"]: v["aliases"] for v in listed} == {"2": ["champion"], "1": []}

    back = gristmill("models", "rollback", "gate", "--json")
    assert back.returncode == 0, back.stderr
    assert (json.loads(back.stdout)["from_version"], json.loads(back.stdout)["to_version"]) == ("2", "1")
    moves = json.loads(gristmill("models", "history", "gate", "--json").stdout)["moves"]
    assert [m["action"] for m in moves] == ["train", "train", "promote", "rollback"]
    assert all(m["by"] and m["at"] for m in moves)


def test_challenge_gives_the_challenger_alias_by_hand(gate):
    """After the rollback above, v1 is champion: v2 can be made challenger, v1 cannot."""
    refused = gristmill("models", "challenge", "gate", "--version", "1")
    assert refused.returncode == 1 and "is the champion" in refused.stderr
    out = gristmill("models", "challenge", "gate", "--version", "2", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["to_version"] == "2"
    listed = json.loads(gristmill("models", "list", "gate", "--json").stdout)["versions"]
    assert {v["version"]: v["aliases"] for v in listed} == {"2": ["challenger"], "1": ["champion"]}
    assert registry.history(gate[0], "gate")[-1]["action"] == "challenge"


def test_a_rollback_to_the_challenger_leaves_it_one_alias(gate):
    """Issue 16: after a rollback the old version held both aliases and `promote` then failed with
    "already the champion". State here: v1 champion, v2 challenger (the test above)."""
    assert gristmill("models", "promote", "gate").returncode == 0            # v2 champion
    assert gristmill("models", "challenge", "gate", "--version", "1").returncode == 0  # v1 challenger
    back = gristmill("models", "rollback", "gate", "--json")                 # champion back to v1
    assert back.returncode == 0, back.stderr
    listed = json.loads(gristmill("models", "list", "gate", "--json").stdout)["versions"]
    assert {v["version"]: v["aliases"] for v in listed} == {"2": [], "1": ["champion"]}
    assert "no challenger now" in json.loads(back.stdout)["reason"]
    again = gristmill("models", "promote", "gate", "--version", "2")
    assert again.returncode == 0, again.stderr
