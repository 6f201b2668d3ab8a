"""Calibration chosen by cross-validation on out-of-fold scores: it repairs over- and
under-confident probabilities, keeps what needs no repair, and never changes the predicted class."""

import dataclasses

import numpy as np
import pytest

from gristmill.training import calibration


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _multiclass(n=3000, k=12, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k))
    truth = _softmax(logits)
    y = np.array([rng.choice(k, p=p) for p in truth])
    return logits, truth, y


@pytest.mark.parametrize("sharpness", [3.0, 0.4])   # over-confident, then too flat
def test_a_miscalibrated_multiclass_ensemble_gets_its_temperature_back(sharpness):
    logits, truth, y = _multiclass()
    scores = _softmax(logits * sharpness)
    found = calibration.fit("multiclass", scores, y, "log_loss")
    assert found["method"] == "temperature"
    assert found["temperature"] == pytest.approx(sharpness, rel=0.25)
    fixed = calibration.apply(found, "multiclass", scores)
    assert calibration._log_loss("multiclass", fixed, y) < 0.97 * calibration._log_loss("multiclass", scores, y)
    assert (fixed.argmax(axis=1) == scores.argmax(axis=1)).all()
    assert np.allclose(fixed.sum(axis=1), 1.0)
    assert found["cv_log_loss"]["temperature"] < found["cv_log_loss"]["none"]


def test_calibrated_scores_are_left_alone():
    _, truth, y = _multiclass(seed=1)
    assert calibration.fit("multiclass", truth, y, "log_loss") is None


def test_binary_keeps_its_ranking_and_threshold_and_uses_isotonic_only_for_probability_metrics():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    n = 4000
    logit = rng.normal(scale=2.0, size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    sharp = 1 / (1 + np.exp(-4 * logit))
    for metric in ("roc_auc", "accuracy", "f1"):
        found = calibration.fit("binary", sharp, y, metric)
        assert found["method"] == "temperature"
        fixed = calibration.apply(found, "binary", sharp)
        assert (np.diff(fixed[np.argsort(sharp, kind="stable")]) >= 0).all()   # the order is kept
        assert roc_auc_score(y, fixed) == pytest.approx(roc_auc_score(y, sharp), abs=1e-9)
        assert ((fixed >= 0.5) == (sharp >= 0.5)).all()
    # a shape no temperature mends: probabilities squeezed into [0.4, 0.6]
    squeezed = 0.4 + 0.2 * (rng.uniform(size=n) < 0.5)
    y2 = (rng.uniform(size=n) < np.where(squeezed > 0.5, 0.95, 0.05)).astype(int)
    found = calibration.fit("binary", squeezed, y2, "log_loss")
    assert found["method"] in ("isotonic", "temperature")
    assert calibration._log_loss("binary", calibration.apply(found, "binary", squeezed), y2) < 0.5 * \
        calibration._log_loss("binary", squeezed, y2)


def test_nothing_for_regression_or_tiny_or_one_class_data():
    assert calibration.fit("regression", np.arange(100.0), np.arange(100), "rmse") is None
    assert calibration.fit("binary", np.full(10, 0.9), np.ones(10, dtype=int), "log_loss") is None
    assert calibration.fit("binary", np.full(500, 0.9), np.ones(500, dtype=int), "log_loss") is None
    scores = np.array([0.2, 0.7])
    assert calibration.apply(None, "binary", scores) is scores


def test_a_trained_model_carries_its_calibration_through_save_load_and_the_registry(workspace, tmp_path):
    """The registered model, reloaded, scores exactly as training computed its holdout."""
    import mlflow
    import pandas as pd

    from gristmill.config import mlflow_client
    from gristmill.training.model import TabularModel
    from gristmill.training.train import CHAMPION, configure_mlflow, train
    from test_train import _spec   # the sibling module (pytest puts this folder on sys.path)

    rng = np.random.default_rng(5)
    n, k = 900, 6
    x = rng.normal(size=(n, 4))
    y = np.array([f"c{v}" for v in np.argmax(x @ rng.normal(size=(4, k)) + rng.gumbel(size=(n, k)), axis=1)])
    frame = pd.DataFrame({"thing_id": [f"id{i}" for i in range(n)],
                          "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC"), "y": y,
                          **{f"t__x{j}": x[:, j] for j in range(4)}})
    out = workspace.datasets("calib")
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "calib-test.parquet", index=False)
    result = train(workspace, _spec("calib", "multiclass", budget_seconds=8, max_trials=4, trainers=["lightgbm"]),
                   "calib-test", out / "calib-test.parquet")

    configure_mlflow(workspace)
    client = mlflow_client(workspace)
    run = client.get_run(result.run_id)
    pyfunc = mlflow.pyfunc.load_model(f"models:/calib@{CHAMPION}")
    model: TabularModel = pyfunc.unwrap_python_model().model
    assert run.data.params["calibration"] == ("none" if model.calibration is None else
                                              f"temperature {model.calibration['temperature']:.3f}")
    saved = TabularModel.load(model.save(tmp_path / "copy"))
    assert saved.calibration == model.calibration
    rows = frame.drop(columns=["thing_id", "event_timestamp", "y"]).head(50)
    assert np.allclose(saved.predict_raw(saved.frame(rows)), model.predict_raw(model.frame(rows)))
    if model.calibration:   # the calibrated scores differ from the raw average of the members
        raw = dataclasses.replace(model, calibration=None)
        assert not np.allclose(raw.predict_raw(raw.frame(rows)), model.predict_raw(model.frame(rows)))
