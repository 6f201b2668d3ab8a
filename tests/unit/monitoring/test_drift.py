"""Drift reports run through real Evidently on small seeded frames (no mocks)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gristmill.errors import DataError
from monitoring.drift import DriftResult, run_drift_report

PLANS = ["basic", "plus", "pro"]


def customers(seed: int, n: int, *, age_shift: float = 0.0, plan_p=(0.6, 0.3, 0.1)) -> pd.DataFrame:
    """A churn-like frame: two numeric columns, a string category, an integer-coded category."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40 + age_shift, 10, n).round(1),
            "income": rng.lognormal(10.5, 0.4, n).round(2),
            "plan": rng.choice(PLANS, n, p=list(plan_p)),
            "region": rng.integers(1, 6, n),
        }
    )
    frame.loc[rng.random(n) < 0.03, "income"] = np.nan  # a few gaps, as real data has
    return frame


def test_same_distribution_has_no_drift(tmp_path):
    reference, current = customers(1, 400), customers(2, 400)

    result = run_drift_report(reference, current, tmp_path / "reports", name="weekly-2026.11")

    assert isinstance(result, DriftResult)
    assert not result.dataset_drift
    assert result.drifted_columns == []
    assert result.drift_share == 0.0
    assert [c.column for c in result.columns] == ["age", "income", "plan", "region"]
    assert (result.n_reference, result.n_current) == (400, 400)
    # 400 reference rows: Evidently uses p-value tests
    assert all("p_value" in c.method and c.threshold == 0.05 for c in result.columns)
    assert result.computed_at.utcoffset().total_seconds() == 0
    assert result.html_path == tmp_path / "reports" / "weekly-2026.11.html"
    assert result.html_path.stat().st_size > 0
    report = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert {"metrics", "tests"} <= report.keys()
    assert sorted(p.name for p in result.html_path.parent.iterdir()) == [
        "weekly-2026.11.html",
        "weekly-2026.11.json",
    ]  # no temporary file left behind
    assert result.summary_line().startswith("weekly-2026.11: no dataset drift: 0/4 columns")
    assert DriftResult.model_validate_json(result.model_dump_json()) == result


def test_two_shifted_columns_of_four_are_flagged(tmp_path):
    reference = customers(3, 2000)
    current = customers(4, 2000, age_shift=8.0, plan_p=(0.2, 0.3, 0.5))

    result = run_drift_report(
        reference, current, tmp_path, name="shifted", categorical=["region"]
    )

    assert result.drifted_columns == ["age", "plan"]
    assert result.drift_share == 0.5
    assert result.dataset_drift  # 0.5 >= the default threshold 0.5
    by_name = {c.column: c for c in result.columns}
    assert by_name["region"].column_type == "categorical"
    assert by_name["age"].column_type == "numerical"
    # 2,000 reference rows: Evidently uses distances (drift when score >= 0.1)
    assert by_name["age"].method.startswith("Wasserstein")
    assert by_name["age"].score > by_name["age"].threshold == 0.1
    assert by_name["income"].score < 0.1 and not by_name["income"].drifted
    line = result.summary_line()
    assert "DATASET DRIFT" in line and "2/4" in line and "[age, plan]" in line

    stricter = run_drift_report(
        reference, current, tmp_path, name="shifted", columns=["age", "income", "plan"],
        drift_share_threshold=0.7,
    )
    assert stricter.drifted_columns == ["age", "plan"]
    assert not stricter.dataset_drift  # 2/3 < 0.7


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "a\\b", "has space", "..", "r\u00e9sum\u00e9"])
def test_unsafe_name_is_rejected(tmp_path, name):
    frame = customers(5, 50)
    with pytest.raises(DataError, match="invalid report name"):
        run_drift_report(frame, frame, tmp_path, name=name)
    assert list(tmp_path.iterdir()) == []


def test_unusable_frames_are_rejected(tmp_path):
    frame = customers(6, 50)
    with pytest.raises(DataError, match="current frame is empty"):
        run_drift_report(frame, frame.iloc[0:0], tmp_path, name="x")
    with pytest.raises(DataError, match="share no column"):
        run_drift_report(frame[["age"]], frame[["plan"]], tmp_path, name="x")
    with pytest.raises(DataError, match=r"reference lacks \['tenure'\]; current lacks \['tenure'\]"):
        run_drift_report(frame, frame, tmp_path, name="x", columns=["age", "tenure"])
    with pytest.raises(DataError, match="no value"):
        run_drift_report(frame, frame.assign(income=np.nan), tmp_path, name="x")
    with pytest.raises(DataError, match="drift_share_threshold"):
        run_drift_report(frame, frame, tmp_path, name="x", drift_share_threshold=0)
    assert list(tmp_path.iterdir()) == []


def test_import_stays_light():
    code = (
        "import sys, monitoring.drift; "
        "assert 'evidently' not in sys.modules and 'pandas' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
