"""The linear second layer: kept only when it beats the greedy weights on rows it never saw, plain
data in the model, the same scores after a save and a load."""

import numpy as np
import pandas as pd

from gristmill.training import stacking
from gristmill.training.ensemble import greedy_weights
from gristmill.training.search import Candidate
from gristmill.training.task import get_metric


def _experts(n: int, seed: int):
    """Three classes; member A tells class 0 from the rest but not 1 from 2, member B the reverse."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    sharp = lambda hit: np.clip(rng.normal(0.85, 0.08, n), 0.4, 0.99) * hit + \
        np.clip(rng.normal(0.1, 0.05, n), 0.01, 0.5) * (1 - hit)   # noqa: E731
    p0 = sharp(y == 0)
    a = np.column_stack([p0, (1 - p0) / 2, (1 - p0) / 2])
    p1 = sharp(y == 1)
    p2 = np.where(y == 0, 1 - p1, sharp(y == 2))
    b = np.column_stack([np.full(n, 1 / 3), p1, p2])
    b = b / b.sum(axis=1, keepdims=True)
    return y, a, b


def _candidates(preds):
    return [Candidate(i, "lightgbm", {}, 0.0, None, 0.0, p) for i, p in enumerate(preds)]


def test_a_stacker_that_combines_complementary_members_is_kept_and_wins_on_new_rows():
    metric = get_metric("log_loss", "multiclass")
    y, a, b = _experts(3000, 0)
    weights = greedy_weights(_candidates([a, b]), y, metric)
    greedy = sum(w * [a, b][n] for n, w in weights.items())
    layer = stacking.fit("multiclass", [a, b], y, metric, metric.score(y, greedy))
    assert layer is not None and layer["cv"]["stacked"] < layer["cv"]["greedy"]
    y2, a2, b2 = _experts(2000, 1)
    stacked = stacking.apply(layer, "multiclass", stacking.inputs("multiclass", [a2, b2]))
    mixed = sum(w * [a2, b2][n] for n, w in weights.items())
    assert np.allclose(stacked.sum(axis=1), 1.0)
    assert metric.score(y2, stacked) < 0.8 * metric.score(y2, mixed)


def test_no_stacker_when_the_weights_do_as_well():
    metric = get_metric("roc_auc", "binary")
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 2000)
    good = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, 0.2, 2000), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, 2000)
    assert stacking.fit("binary", [good, noise], y, metric, metric.score(y, good)) is None
    assert stacking.fit("binary", [good], y, metric, 0.0) is None   # one member: nothing to stack


def test_the_folded_standardisation_gives_sklearns_own_predictions():
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(4)
    Z = rng.normal(size=(400, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -3.0]
    target = Z @ [1.0, 0.2, 4.0] + rng.normal(size=400)
    layer = stacking._fit_layer("regression", Z, target)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=stacking.ALPHA)).fit(Z, target)
    assert np.allclose(stacking.apply(layer, "regression", Z), ref.predict(Z))
    labels = (target > np.median(target)).astype(int)
    layer = stacking._fit_layer("binary", Z, labels)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=stacking.C, max_iter=2000)).fit(Z, labels)
    assert np.allclose(stacking.apply(layer, "binary", Z), ref.predict_proba(Z)[:, 1])


def test_a_stacked_model_scores_its_groups_and_keeps_them_through_save_and_load(tmp_path):
    from gristmill.training import trainers
    from gristmill.training.model import Member, TabularModel
    from gristmill.training.trainers import Task

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = (X["a"] + 0.5 * X["b"] + rng.normal(scale=0.5, size=300) > 0).astype(int).to_numpy()
    task = Task("binary", 2, threads=1)
    lgb, lin = trainers.get("lightgbm"), trainers.get("linear")
    fits = [lgb.fit({**lgb.defaults, "min_child_samples": 5}, task, X.iloc[:150], y[:150], rounds=30),
            lgb.fit({**lgb.defaults, "min_child_samples": 5}, task, X.iloc[150:], y[150:], rounds=30),
            lin.fit(dict(lin.defaults), task, X, y)]
    layer = {"method": "linear", "coef": [[0.7, 1.3]], "intercept": [-0.2], "groups": [0, 0, 1]}
    model = TabularModel("p", "binary", ["a", "b"], ["a", "b"], {}, classes=[0, 1], stacker=layer,
                         members=[Member("lightgbm", 0.25, fits[0]), Member("lightgbm", 0.25, fits[1]),
                                  Member("linear", 0.5, fits[2])])
    frame = model.frame(X.head(40))
    bag = (lgb.predict(fits[0], task, frame) + lgb.predict(fits[1], task, frame)) / 2   # one input: the bag
    by_hand = stacking.apply(layer, "binary", stacking.inputs("binary", [bag, lin.predict(fits[2], task, frame)]))
    assert np.allclose(model.scores(frame), by_hand)
    again = TabularModel.load(model.save(tmp_path / "m"))
    assert again.stacker == layer
    assert np.allclose(again.scores(again.frame(X.head(40))), by_hand)


def test_a_training_that_keeps_a_stacker_registers_it_and_serves_through_it(workspace, monkeypatch):
    import mlflow

    from gristmill.config import mlflow_client
    from gristmill.training.train import CHAMPION, configure_mlflow, train
    from test_train import _dataset, _spec   # the sibling module

    monkeypatch.setattr(stacking, "MIN_GAIN", -1.0)   # keep any stacker: this test is about its path
    dataset_id, path = _dataset(workspace, "stacked", "multiclass")
    result = train(workspace, _spec("stacked", "multiclass", budget_seconds=60, max_trials=6, folds=3,
                                    trainers=["lightgbm", "linear", "knn"]), dataset_id, path)
    configure_mlflow(workspace)
    model = mlflow.pyfunc.load_model(f"models:/stacked@{CHAMPION}").unwrap_python_model().model
    run = mlflow_client(workspace).get_run(result.run_id)
    assert len(result.ensemble) >= 2   # three trials of this table's search join (fixed seeds)
    assert model.stacker is not None and len(model.stacker["groups"]) == len(model.members)
    assert model.calibration is None
    assert run.data.metrics["ensemble_stacked"] == 1
    assert run.data.params["stacker"].startswith(f"linear over {len(result.ensemble)} members")
    rows = pd.read_parquet(path).drop(columns=["thing_id", "event_timestamp", "y"]).head(50)
    table = model.predict_table(rows)
    probabilities = table[[c for c in table.columns if c.startswith("probability_")]]
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert result.holdout_score < 0.6   # log loss of a learnable 3-class table
