"""Label rows a training cannot use are counted and reported, never dropped without a word (issue 16)."""

import json

import numpy as np
import pandas as pd
import pytest

from gristmill.features.tables import build_feature_tables
from gristmill.spec import parse_spec
from gristmill.training.prepare import _pending
from gristmill.training.train import train


@pytest.mark.parametrize("values,pending", [
    ([1.0, np.nan, 0.0, None], [False, True, False, True]),       # NaN and None in a float target
    (["Yes", "", "  ", None, "No"], [False, True, True, True, False]),  # blank text is pending too
    (pd.array([1, None, 0], dtype="Int64"), [False, True, False]),  # nullable integers
    ([True, False], [False, False]),
])
def test_what_counts_as_pending(values, pending):
    assert _pending(pd.Series(values)).tolist() == pending


def _spec(project: str, **training):
    return parse_spec({"project": project, "sources": [{"path": "unused"}],
                       "entity": {"name": "c", "key": "c_id"},
                       "features": [{"table": "t", "timestamp": "ts"}],
                       "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
                       "training": {"task": "binary", "budget_seconds": 5, "max_trials": 1, **training}},
                      "p.yaml")


@pytest.mark.parametrize("target", [
    ["Yes", "No", None, "", " ", "Yes", "No", "Yes"],   # text: missing, empty, blank
    [1.0, 0.0, np.nan, np.nan, None, 1.0, 0.0, 1.0],    # float: NaN and missing
])
def test_the_label_table_build_counts_each_left_out_row_once(target, workspace, add_tables):
    ts = pd.to_datetime(["2024-01-01"] * 8)
    add_tables(workspace, "pend", {
        "t": pd.DataFrame({"c_id": [f"c{i}" for i in range(8)], "ts": ts, "x": np.arange(8.0)}),
        "labels": pd.DataFrame({"c_id": ["c0", "c1", "c2", "c3", "c4", None, "c6", "c7"],
                                "as_of": [*ts[:7], pd.NaT], "y": target})})
    manifest = build_feature_tables(workspace, _spec("pend"))
    # c2..c4 pending; the row with no key and the one with no time are counted under their reason
    assert manifest.labels_left_out == {"pending": 3, "no_key": 1, "no_timestamp": 1}
    assert len(pd.read_parquet(manifest.labels_path)) == 3


def test_training_reports_pending_labels_in_its_result_and_mlflow(workspace):
    import mlflow

    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=n)
    y = np.where(x + rng.normal(scale=0.5, size=n) > 0, "Yes", "No").astype(object)
    y[:25] = None  # pending inside the set
    frame = pd.DataFrame({"c_id": [f"c{i}" for i in range(n)], "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
                          "y": y, "t__x": x})
    out = workspace.datasets("pend")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pend-set.parquet"
    frame.to_parquet(path, index=False)
    path.with_suffix(".json").write_text(json.dumps({"labels_left_out": {"pending": 5, "no_key": 2,
                                                                         "no_timestamp": 0}}))
    result = train(workspace, _spec("pend"), "pend-set", path)
    assert result.labels_left_out == {"pending": 30, "no_key": 2, "no_timestamp": 0}
    run = mlflow.get_run(result.run_id)
    assert run.data.params["labels_left_out_pending"] == "30"
    assert run.data.metrics["labels_pending"] == 30
    assert run.data.params["rows"] == str(n - 25)
