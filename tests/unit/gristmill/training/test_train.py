"""Training on small real-ish data: every task trains, registers a champion and predicts the same
through MLflow's pyfunc as through the native path the service uses."""

import numpy as np
import pandas as pd
import pytest

from gristmill.spec import parse_spec
from gristmill.training.train import CHAMPION, configure_mlflow, train


def _spec(project: str, task: str, metric: str = "auto", **training) -> object:
    return parse_spec({
        "project": project,
        "sources": [{"path": "unused"}],
        "entity": {"name": "thing", "key": "thing_id"},
        "features": [{"table": "t"}],
        "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
        "training": {"task": task, "metric": metric, "budget_seconds": 5, "max_trials": 3, **training},
    }, "t.yaml")


def _dataset(ws, project: str, task: str) -> tuple[str, object]:
    rng = np.random.default_rng(3)
    n = 400
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], n)
    signal = x1 + (color == "red") * 1.5
    if task == "binary":
        y = np.where(signal + rng.normal(scale=0.5, size=n) > 0.5, "Yes", "No")
    elif task == "multiclass":
        y = np.select([signal < -0.5, signal < 0.8], ["low", "mid"], "high")
    else:
        y = 3 * signal + rng.normal(scale=0.3, size=n)
    frame = pd.DataFrame({"thing_id": [f"id{i}" for i in range(n)],
                          "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
                          "y": y, "t__x1": x1, "t__x2": x2, "t__color": color})
    frame.loc[::17, "t__x2"] = np.nan
    out = ws.datasets(project)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{project}-test.parquet"
    frame.to_parquet(path, index=False)
    return f"{project}-test", path


@pytest.mark.parametrize("task,floor", [("binary", 0.8), ("multiclass", None), ("regression", None)])
def test_every_task_trains_registers_and_predicts_consistently(workspace, task, floor):
    import mlflow
    from mlflow import MlflowClient

    project = f"toy_{task}"
    dataset_id, path = _dataset(workspace, project, task)
    result = train(workspace, _spec(project, task), dataset_id, path)
    assert result.task == task and result.n_trials >= 1
    if floor is not None:
        assert result.holdout_score >= floor

    configure_mlflow(workspace)
    version = MlflowClient().get_model_version_by_alias(project, CHAMPION)
    assert str(version.version) == result.version
    assert version.tags["training_set_id"] == dataset_id
    plots = {a.path for a in MlflowClient().list_artifacts(result.run_id, "plots")}
    assert plots == ({"plots/residuals.png"} if task == "regression" else
                     {"plots/confusion.png"} | ({"plots/roc.png"} if task == "binary" else set())) | \
        ({"plots/feature_importance.png"} if "plots/feature_importance.png" in plots else set())
    pyfunc = mlflow.pyfunc.load_model(f"models:/{project}@{CHAMPION}")
    rows = pd.read_parquet(path).drop(columns=["thing_id", "event_timestamp", "y"]).head(20)
    via_mlflow = pyfunc.predict(rows)
    native = pyfunc.unwrap_python_model().model.predict_table(rows)
    pd.testing.assert_frame_equal(via_mlflow.reset_index(drop=True), native)
    if task != "regression":
        probs = native.filter(like="probability_")
        assert np.allclose(probs.sum(axis=1), 1.0)


def test_wrong_metric_for_task_is_a_clear_error(workspace):
    from gristmill.errors import DataError

    dataset_id, path = _dataset(workspace, "toy_bad", "regression")
    with pytest.raises(DataError, match="training.metric: 'roc_auc' does not fit a regression task"):
        train(workspace, _spec("toy_bad", "auto", "roc_auc"), dataset_id, path)


def test_interrupted_study_keeps_finished_trials(workspace):
    """A second training on the same training set resumes the Optuna journal."""
    dataset_id, path = _dataset(workspace, "toy_resume", "binary")
    first = train(workspace, _spec("toy_resume", "binary"), dataset_id, path)
    second = train(workspace, _spec("toy_resume", "binary"), dataset_id, path)
    assert second.n_trials >= first.n_trials


@pytest.mark.parametrize("refit", ["all", "train"])
def test_the_refit_choice_is_recorded_and_the_model_serves(workspace, refit):
    """``refit: all`` learns from the holdout too (the fold models scored it); ``train`` does not."""
    from mlflow import MlflowClient

    project = f"toy_refit_{refit}"
    dataset_id, path = _dataset(workspace, project, "binary")
    result = train(workspace, _spec(project, "binary", refit=refit), dataset_id, path)
    assert 0.8 <= result.holdout_score <= 1.0
    configure_mlflow(workspace)
    client = MlflowClient()
    version = client.get_model_version(project, result.version)
    assert version.tags["refit"] == refit and len(version.tags["fingerprint_holdout"]) == 32
    params = client.get_run(result.run_id).data.params
    assert params["refit"] == refit and int(params["parallel_fits"]) >= 1
    metrics = client.get_run(result.run_id).data.metrics
    assert {"seconds_search", "seconds_refit", "seconds_register"} <= set(metrics)


def test_default_folds_keep_every_core_busy():
    from gristmill.training.search import Pace, default_folds

    assert [default_folds(c) for c in (1, 2, 3, 4, 8, 16)] == [5, 4, 6, 4, 8, 10]
    pace = Pace.for_budget(end=100.0, after_search=4.0, folds=4, cores=2)
    assert (pace.workers, pace.threads) == (2, 1)
    assert Pace.for_budget(100.0, 4.0, folds=4, cores=16).threads == 4


def test_a_tiny_budget_still_gets_a_whole_first_model(workspace):
    """The first trial is never cut short: a budget smaller than the fixed costs is overrun rather
    than answered with a model of a few boosting rounds."""
    import mlflow

    dataset_id, path = _dataset(workspace, "toy_tiny", "binary")
    result = train(workspace, _spec("toy_tiny", "binary", trainers=["lightgbm"]), dataset_id, path,
                   budget_seconds=1)
    configure_mlflow(workspace)
    model = mlflow.pyfunc.load_model(f"models:/toy_tiny/{result.version}").unwrap_python_model().model
    # one refitted model, or (the refit does not fit a budget this small) its fold models
    assert {m.trainer for m in model.members} == {"lightgbm"}
    assert len(model.members) == 1 or {m.params.get("bagged_trial") for m in model.members} == {0}
    assert all(m.fitted.native.num_trees() > 10 for m in model.members)
