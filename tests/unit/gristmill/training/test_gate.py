"""Quality gates: the checks on small arrays, and real trainings whose models the gate rejects
(registered with the reasons, no alias, never champion) or lets through."""

import numpy as np
import pandas as pd
import pytest

from gristmill.errors import DataError, GristmillError
from gristmill.spec import GateSpec, parse_spec
from gristmill.training import gate, registry
from gristmill.training.task import get_metric
from gristmill.training.train import train


def test_calibration_error_is_zero_when_probabilities_match_frequencies_and_large_when_not():
    y = np.array([1] * 30 + [0] * 70)
    honest = np.full(100, 0.3)
    assert gate.calibration_error(y, honest) == pytest.approx(0.0)
    assert gate.calibration_error(y, np.full(100, 0.9)) == pytest.approx(0.6)
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])  # several classes: the top class against being right
    assert gate.calibration_error(np.array([0, 0]), proba) == pytest.approx((0.1 + 0.8) / 2)


def test_min_max_and_slices_name_what_failed_and_skip_small_or_undefined_slices():
    rng = np.random.default_rng(0)
    n = 300
    plan = np.where(np.arange(n) < 200, "basic", np.where(np.arange(n) < 290, "pro", "tiny"))
    y = rng.integers(0, 2, n)
    good = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
    # on "pro" the new model is random; the champion was good everywhere
    mine = np.where(plan == "pro", rng.random(n), good)
    frame = pd.DataFrame({"customers__plan": plan})
    spec = GateSpec(min={"roc_auc": 0.6}, max={"log_loss": 5.0}, slices=["plan"], max_regression=0.5,
                    max_slice_regression=0.1, min_slice_rows=20)
    metric = get_metric("roc_auc", "binary")
    result = gate.check(spec, "binary", metric, y, mine, frame, champion_score=metric.score(y, good),
                        champion_scores=good)
    assert result.status == "failed"
    assert any(f.startswith("slice plan=pro roc_auc vs champion") for f in result.failures)
    assert not any("plan=basic" in f for f in result.failures)
    assert any("plan=tiny" in s and "fewer than 20" in s for s in result.skipped)
    assert set(result.slice_scores["plan"]) == {"basic", "pro"}
    assert {c.name for c in result.checks if c.passed} >= {"min roc_auc", "max log_loss"}
    strict = GateSpec(min={"roc_auc": 0.99})
    failed = gate.check(strict, "binary", metric, y, good, frame)
    assert failed.failures and failed.failures[0].startswith("min roc_auc") and "0.99" in failed.failures[0]
    assert gate.check(GateSpec(), "binary", metric, y, good, frame).status == "none"


def test_gate_that_does_not_fit_the_task_or_the_columns_is_refused_before_training():
    with pytest.raises(DataError, match="gate.min: metric 'rmse' does not fit a binary task"):
        gate.validate(GateSpec(min={"rmse": 1.0}), "binary", ["t__x"])
    with pytest.raises(DataError, match="'region' is not a column"):
        gate.validate(GateSpec(slices=["region"]), "binary", ["t__x", "t__plan"])
    with pytest.raises(DataError, match="calibration"):
        gate.validate(GateSpec(max_calibration_error=0.1), "regression", ["t__x"])
    gate.validate(GateSpec(slices=["plan"], min={"roc_auc": 0.5}), "binary", ["t__x", "t__plan"])


def _spec(project: str, gate_spec: dict):
    return parse_spec({
        "project": project,
        "sources": [{"path": "unused"}],
        "entity": {"name": "thing", "key": "thing_id"},
        "features": [{"table": "t"}],
        "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
        "training": {"task": "binary", "budget_seconds": 5, "max_trials": 1, "trainers": ["linear"],
                     "gate": gate_spec},
    }, "t.yaml")


def _dataset(ws, project: str, name: str, noise: float, blind: bool = False):
    """Binary data; ``noise``: share of labels flipped; ``blind``: the main feature is shuffled, so
    a model trained on it is worse than one that saw it."""
    rng = np.random.default_rng(7)
    n = 500
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = (x1 + 0.5 * x2 > 0).astype(int)
    y = np.where(rng.random(n) < noise, 1 - y, y)
    frame = pd.DataFrame({"thing_id": [f"id{i}" for i in range(n)],
                          "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
                          "y": np.where(y == 1, "Yes", "No"), "t__x1": x1, "t__x2": x2,
                          "t__plan": np.where(rng.random(n) < 0.5, "basic", "pro")})
    if blind:
        frame["t__x1"] = rng.permutation(frame["t__x1"].to_numpy())
    out = ws.datasets(project)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return name, path


def test_a_model_failing_its_gate_is_registered_with_the_reasons_and_never_becomes_champion(workspace):
    ws = workspace
    rejected = train(ws, _spec("gated", {"min": {"roc_auc": 0.99}}), *_dataset(ws, "gated", "noisy", 0.3))
    assert rejected.alias == registry.REJECTED
    assert rejected.gate["status"] == "failed" and rejected.gate["failures"][0].startswith("min roc_auc")
    assert registry.champion_version(ws, "gated") is None
    listed = {v["version"]: v for v in registry.versions(ws, "gated")}
    assert listed["1"]["aliases"] == [] and listed["1"]["gate"] == "failed"
    assert listed["1"]["gate_failures"][0].startswith("min roc_auc")
    with pytest.raises(GristmillError, match="failed its quality gate"):
        registry.promote(ws, "gated", "1")
    assert registry.history(ws, "gated")[-1]["alias"] == registry.REJECTED

    # a clean model passing the gate (minimum and calibration) becomes champion; its slices are recorded
    good_gate = {"min": {"roc_auc": 0.9}, "max_calibration_error": 0.25, "slices": ["plan"],
                 "max_regression": 0.02}
    passed = train(ws, _spec("gated", good_gate), *_dataset(ws, "gated", "clean", 0.0))
    assert (passed.alias, passed.gate["status"]) == ("champion", "passed")
    assert set(passed.gate["slice_scores"]["plan"]) == {"basic", "pro"}

    # a much worse model: beaten overall and on its slices by more than the gate allows
    worse = train(ws, _spec("gated", {"max_regression": 0.02, "slices": ["plan"]}),
                  *_dataset(ws, "gated", "blind", 0.0, blind=True))
    assert worse.alias == registry.REJECTED
    assert any(f.startswith("regression roc_auc vs champion") for f in worse.gate["failures"])
    assert any(f.startswith("slice plan=") for f in worse.gate["failures"])
    assert registry.champion_version(ws, "gated") == passed.version

    # each training wrote its evaluation report (JSON + HTML) and logged it to its MLflow run
    import json

    from mlflow.tracking import MlflowClient

    report = json.loads(open(worse.evaluation["json"]).read())
    assert report["gate"]["status"] == "failed" and set(report["slices"]["plan"]) == {"basic", "pro"}
    low, high = report["metrics"]["roc_auc"]["interval"]
    assert low <= worse.holdout_score <= high
    # the champion kept its recorded score on these same rows (not rescored: no paired interval)
    assert report["champion"]["difference"] < 0 and report["champion"]["difference_interval"] is None
    assert all(r["champion"] is not None for r in report["slices"]["plan"].values())
    first = json.loads(open(passed.evaluation["json"]).read())
    assert first["champion"] is None and first["gate"]["status"] == "passed"  # no champion before it
    logged = {a.path for a in MlflowClient().list_artifacts(worse.run_id, "evaluation")}
    assert logged == {f"evaluation/v{worse.version}.json", f"evaluation/v{worse.version}.html"}
    assert "seconds_evaluation" in MlflowClient().get_run(worse.run_id).data.metrics
