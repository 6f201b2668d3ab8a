"""The evaluation report on small real data (scikit-learn's breast cancer and diabetes sets): the
numpy metrics used for the bootstrap agree with the training's own metrics, intervals bracket the
holdout value and are reproducible, slices and the champion comparison are reported, the HTML is
escaped, and the report never touches the inputs."""

import json

import numpy as np
import pandas as pd
import pytest

from gristmill.spec import GateSpec
from gristmill.training import evaluation, gate
from gristmill.training.task import TASK_METRICS, get_metric


def _binary():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    weak = LogisticRegression(max_iter=200).fit(X[:300, :2], y[:300]).predict_proba(X[300:, :2])[:, 1]
    strong = LogisticRegression(max_iter=500).fit(X[:300], y[:300]).predict_proba(X[300:])[:, 1]
    size = np.where(X[300:, 0] > 0, "large", "small").astype(object)
    size[:3] = "<b>odd</b>"
    return y[300:], strong, weak, pd.DataFrame({"tumours__size": size})


def test_numpy_metrics_agree_with_the_training_metrics():
    y, strong, _, _ = _binary()
    for name in TASK_METRICS["binary"]:
        assert evaluation.FAST[name](y, strong) == pytest.approx(get_metric(name, "binary").score(y, strong), abs=1e-9)
    ties = np.round(strong, 1)  # tied scores: average ranks, thresholds at distinct values
    for name in ("roc_auc", "average_precision"):
        assert evaluation.FAST[name](y, ties) == pytest.approx(get_metric(name, "binary").score(y, ties), abs=1e-9)
    from sklearn.datasets import load_diabetes

    X, t = load_diabetes(return_X_y=True)
    guess = X[:, 2] * 900 + t.mean()
    for name in TASK_METRICS["regression"]:
        assert evaluation.FAST[name](t, guess) == pytest.approx(get_metric(name, "regression").score(t, guess))
    proba = np.random.default_rng(0).dirichlet([1, 1, 1], 60)
    labels = np.random.default_rng(1).integers(0, 3, 60)
    for name in TASK_METRICS["multiclass"]:
        assert evaluation.FAST[name](labels, proba) == pytest.approx(
            get_metric(name, "multiclass").score(labels, proba), abs=1e-9)


def test_report_metrics_intervals_slices_champion_and_gate(tmp_path):
    y, strong, weak, frame = _binary()
    before = (y.copy(), strong.copy(), frame.copy())
    metric = get_metric("roc_auc", "binary")
    spec = GateSpec(min={"roc_auc": 0.9}, slices=["size"], max_regression=0.05, min_slice_rows=20)
    checked = gate.check(spec, "binary", metric, y, strong, frame, metric.score(y, weak), champion_scores=weak)
    report = evaluation.evaluate("binary", metric, y, strong, frame, spec, checked, metric.score(y, weak), weak,
                                 "rescored on the rows", seed=3)
    assert list(report["metrics"])[0] == "roc_auc" and set(report["metrics"]) == TASK_METRICS["binary"]
    for m in report["metrics"].values():
        low, high = m["interval"]
        assert low <= m["value"] <= high and low < high
    assert report["rows"] == len(y) and report["resamples"] == evaluation.RESAMPLES
    # the same seed gives the same intervals; another seed other ones
    again = evaluation.evaluate("binary", metric, y, strong, frame, spec, checked, seed=3)
    assert again["metrics"] == report["metrics"]
    assert evaluation.evaluate("binary", metric, y, strong, seed=4)["metrics"]["roc_auc"] != report["metrics"]["roc_auc"]
    # slices: the gate's column, small ones noted, the champion's score on each
    sizes = report["slices"]["size"]
    assert sizes["<b>odd</b>"]["value"] is None and "fewer than 20" in sizes["<b>odd</b>"]["note"]
    assert sizes["large"]["rows"] + sizes["small"]["rows"] + 3 == len(y)
    assert sizes["large"]["champion"] == pytest.approx(metric.score(y[frame.tumours__size == "large"],
                                                                    weak[frame.tumours__size == "large"]))
    # the strong model beats the weak champion: the paired interval of the difference is above 0
    champ = report["champion"]
    assert champ["difference"] == pytest.approx(metric.score(y, strong) - metric.score(y, weak), abs=1e-5)
    assert 0 < champ["difference_interval"][0] <= champ["difference"] <= champ["difference_interval"][1]
    assert report["gate"]["status"] == "passed"
    assert {c["name"] for c in report["gate"]["checks"]} >= {"min roc_auc", "regression roc_auc vs champion"}
    # inputs untouched
    assert (y == before[0]).all() and (strong == before[1]).all() and frame.equals(before[2])

    paths = evaluation.write(report, tmp_path / "evaluation", "v1", "shop <version 1>")
    assert json.loads(open(paths["json"]).read())["champion"]["difference"] == champ["difference"]
    page = open(paths["html"]).read()
    assert "&lt;b&gt;odd&lt;/b&gt;" in page and "<b>odd</b>" not in page and "shop &lt;version 1&gt;" in page
    assert "min roc_auc" in page and "passed" in page


def test_a_regression_report_without_gate_or_champion():
    from sklearn.datasets import load_diabetes

    X, t = load_diabetes(return_X_y=True)
    guess = X[:, 2] * 900 + t.mean()
    report = evaluation.evaluate("regression", get_metric("rmse", "regression"), t, guess)
    assert list(report["metrics"])[0] == "rmse" and report["champion"] is None and report["slices"] == {}
    assert report["metrics"]["rmse"]["greater_is_better"] is False
    assert "No quality gate" in evaluation.to_html(report, "t") and "No champion" in evaluation.to_html(report, "t")
