"""The fast path (cached reference statistics, own vectorised tests, sampling) against full Evidently."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from monitoring import checks
from monitoring.drift import run_drift_report


def frame(seed: int, n: int, drifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shift = 1.0 if drifted else 0.0
    out = pd.DataFrame({
        "age": rng.normal(40 + 6 * shift, 10, n).round(1),
        "income": rng.lognormal(10.5 + 0.3 * shift, 0.4, n),
        "tenure": rng.exponential(24, n),  # never drifts
        "children": rng.choice([0, 1, 2, 3], n, p=[0.4, 0.3, 0.2, 0.1] if not drifted else [0.1, 0.2, 0.3, 0.4]),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1] if not drifted else [0.2, 0.3, 0.5]),
        "region": rng.choice([f"r{i}" for i in range(30)], n),  # never drifts
        "paperless": rng.random(n) < (0.5 if not drifted else 0.5),
    })
    out.loc[rng.random(n) < 0.05, "income"] = np.nan
    return out


KINDS = {"age": "numerical", "income": "numerical", "tenure": "numerical", "children": "numerical",
         "plan": "categorical", "region": "categorical", "paperless": "categorical"}


def evidently_verdicts(reference, current, tmp_path):
    result = run_drift_report(reference, current, tmp_path, name="full", columns=list(KINDS),
                              categorical=["paperless"])
    return {c.column: c for c in result.columns}


@pytest.mark.parametrize("drifted", [False, True], ids=["undrifted", "drifted"])
def test_fast_path_reaches_evidentlys_verdicts(tmp_path, drifted):
    reference, current = frame(1, 20_000), frame(2, 20_000, drifted)
    stats = json.loads(json.dumps(checks.reference_stats(reference, KINDS)))  # as cached on disk

    fast = {r["column"]: r for r in checks.drift(stats, current, list(KINDS))}
    full = evidently_verdicts(reference, current, tmp_path)

    assert {c: r["drifted"] for c, r in fast.items()} == {c: r.drifted for c, r in full.items()}
    for col in KINDS:  # same test, same threshold, nearly the same score
        assert fast[col]["method"] == full[col].method
        assert fast[col]["threshold"] == full[col].threshold
        assert fast[col]["score"] == pytest.approx(full[col].score, abs=0.01)
    drifted_columns = sorted(c for c, r in fast.items() if r["drifted"])
    assert drifted_columns == (["age", "children", "income", "plan"] if drifted else [])


def test_sampled_window_keeps_the_verdicts_and_states_its_error(tmp_path):
    reference = frame(3, 20_000)
    stats = checks.reference_stats(reference, KINDS)
    for drifted in (False, True):
        window = frame(4, 300_000, drifted)
        sample = checks.sample_rows(window, 20_000, seed=0)
        assert len(sample) == 20_000
        full = {r["column"]: r["drifted"] for r in checks.drift(stats, window, list(KINDS))}
        fast = {r["column"]: r["drifted"] for r in checks.drift(stats, sample, list(KINDS))}
        assert fast == full
    eps = checks.dkw_epsilon(20_000, alpha=0.01)
    assert 0.011 < eps < 0.012  # sqrt(ln(200) / 40000)


def test_small_reference_uses_evidentlys_own_p_value_tests(tmp_path):
    reference, current = frame(5, 600), frame(6, 600, drifted=True)
    stats = checks.reference_stats(reference, KINDS)
    assert "values" in stats["columns"]["age"]  # <= 1000 values: kept for the p-value tests

    fast = {r["column"]: r for r in checks.drift(stats, current, list(KINDS))}
    full = evidently_verdicts(reference, current, tmp_path)

    assert {c: r["drifted"] for c, r in fast.items()} == {c: r.drifted for c, r in full.items()}
    assert "p_value" in fast["age"]["method"] and fast["age"]["threshold"] == 0.05


def test_data_quality_counts_missing_new_categories_and_out_of_range():
    reference = frame(7, 5_000)
    stats = checks.reference_stats(reference, KINDS)
    current = frame(8, 1_000)
    current.loc[:199, "age"] = np.nan  # 20% missing
    current.loc[:99, "plan"] = "enterprise"  # 10% new
    current.loc[500:549, "tenure"] = 10_000.0  # 5% far above the reference's maximum

    rows = {r["column"]: r for r in checks.quality(stats, current, list(KINDS))}

    assert rows["age"]["missing_share"] == pytest.approx(0.2)
    assert rows["age"]["missing_increase"] == pytest.approx(0.2)
    assert rows["plan"]["new_category_share"] == pytest.approx(0.1)
    assert rows["plan"]["new_categories"] == ["enterprise"]
    assert 0.05 <= rows["tenure"]["out_of_range_share"] < 0.06  # + the odd natural extreme
    assert rows["region"]["new_category_share"] == 0.0


def test_labelled_quality_scores_classifiers_and_regressors():
    frame_ = pd.DataFrame({"prediction": ["True", "False", "True", "False"],
                           "target": ["True", "False", "False", "False"],
                           "probability": [0.9, 0.2, 0.6, 0.1], "positive": "True"})
    scores = checks.labelled_quality("binary", frame_)
    assert scores["accuracy"] == 0.75 and scores["roc_auc"] == 1.0
    reg = checks.labelled_quality("regression", pd.DataFrame({"prediction": ["1.0", "3.0"], "target": [1.0, 1.0]}))
    assert reg["mae"] == 1.0 and reg["rmse"] == pytest.approx(np.sqrt(2))
