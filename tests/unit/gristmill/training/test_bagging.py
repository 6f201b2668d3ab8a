"""Bagging: a member whose refit does not fit the time left is served as its fold models; with
``refit: bag`` every member is, and the registered model predicts their average."""

import numpy as np

from gristmill.training.search import plan_bags


def test_the_longest_refits_are_bagged_until_the_rest_fit_the_time_left():
    refits = {1: 30.0, 2: 10.0, 3: 8.0, 4: 2.0}
    assert plan_bags(refits, 2, 100.0, False, set(refits)) == set()
    assert plan_bags(refits, 2, 15.0, False, set(refits)) == {1}          # 10+2 | 8 fits in 15
    assert plan_bags(refits, 1, 12.0, False, set(refits)) == {1, 2}       # 8+2 on one lane
    assert plan_bags(refits, 2, 25.0, False, {1, 2, 3, 4}) == {1}
    assert plan_bags(refits, 2, 15.0, False, {2, 3, 4}) == set()   # 1 has no folds and sets the pace
    assert plan_bags(refits, 2, 1.0, False, set(refits)) == set(refits)
    assert plan_bags(refits, 2, 1000.0, True, {1, 3}) == {1, 3}


def test_refit_bag_registers_every_fold_model_and_scores_the_holdout_with_them(workspace):
    import mlflow
    import pandas as pd

    from gristmill.config import mlflow_client
    from gristmill.training import calibration, trainers
    from gristmill.training.train import CHAMPION, configure_mlflow, train
    from test_train import _dataset, _spec   # the sibling module

    dataset_id, path = _dataset(workspace, "bagged", "binary")
    result = train(workspace, _spec("bagged", "binary", budget_seconds=6, max_trials=2, refit="bag",
                                    folds=3, trainers=["lightgbm", "linear"]), dataset_id, path)
    configure_mlflow(workspace)
    model = mlflow.pyfunc.load_model(f"models:/bagged@{CHAMPION}").unwrap_python_model().model
    trials = {m.params["bagged_trial"] for m in model.members}
    assert len(model.members) == 3 * len(trials)     # three fold models for each chosen trial
    assert abs(sum(m.weight for m in model.members) - 1.0) < 1e-9
    run = mlflow_client(workspace).get_run(result.run_id)
    assert run.data.metrics["ensemble_bagged"] == len(trials)
    assert result.holdout_score >= 0.8
    frame = model.frame(pd.read_parquet(path).drop(columns=["thing_id", "event_timestamp", "y"]).head(30))
    by_hand = sum(m.weight * trainers.get(m.trainer).predict(m.fitted, model.trainer_task(),
                                                             trainers.get(m.trainer).inputs(frame))
                  for m in model.members)
    assert np.allclose(model.scores(frame), calibration.apply(model.calibration, model.task, by_hand))
    oof_dirs = list((workspace.root / "optuna" / "bagged").glob("oof-*"))
    assert oof_dirs and not list(oof_dirs[0].glob("*.folds*"))   # the kept fold models were cleaned up


def test_fold_models_are_kept_only_for_trials_that_may_join_the_ensemble():
    from types import SimpleNamespace

    from gristmill.training.search import may_join

    done = [SimpleNamespace(value=0.9 - i * 0.01, params={"trainer": "lightgbm"}) for i in range(12)]
    assert may_join(0.95, "lightgbm", done, maximize=True)          # the best so far
    assert not may_join(0.5, "lightgbm", done, maximize=True)       # 12 better ones of its family
    assert may_join(0.5, "knn", done, maximize=True)                # the best of its family
    assert may_join(0.5, "lightgbm", done[:5], maximize=True)       # fewer than the pool so far
    assert not may_join(2.0, "lightgbm", [SimpleNamespace(value=0.1 * i, params={"trainer": "lightgbm"})
                                          for i in range(12)], maximize=False)   # minimizing: all better
