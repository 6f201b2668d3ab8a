"""The one contract every registered trainer keeps, checked on toy data for every task."""

import numpy as np
import pandas as pd
import pytest

from gristmill.errors import GristmillError
from gristmill.training import trainers
from gristmill.training.trainers import Task


def _toy(kind: str, n: int = 240):
    rng = np.random.default_rng(11)
    x1 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], n)
    x1[::13] = np.nan  # missing values
    signal = np.nan_to_num(x1) + (color == "red") * 1.5
    shops = [f"shop{i}" for i in range(40)]  # more levels than boosted trees take natively
    X = pd.DataFrame({"x1": x1, "x2": rng.normal(size=n),
                      "color": pd.Categorical(color, categories=["blue", "green", "red"]),
                      "shop": pd.Categorical(rng.choice(shops, n), categories=shops)})
    if kind == "binary":
        y = (signal + rng.normal(scale=0.5, size=n) > 0.5).astype(int)
    elif kind == "multiclass":
        y = np.select([signal < -0.3, signal < 0.9], [0, 1], 2)
    else:
        y = 2.0 * signal + rng.normal(scale=0.2, size=n)
    return X, y


@pytest.mark.parametrize("name", trainers.names())
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_every_trainer_keeps_the_contract(name, kind, tmp_path):
    trainer = trainers.get(name)
    X, y = _toy(kind)
    task = Task(kind, 3 if kind == "multiclass" else 2 if kind == "binary" else 0, threads=1)
    fit, valid = slice(0, 180), slice(180, None)
    params = dict(trainer.defaults)
    if trainer.quick_params is not None:
        params = {**params, **trainer.quick_params}
    elif trainer.early_stopping:  # keep the toy fits short
        params = {**params, **({"learning_rate": 0.3} if "learning_rate" in params else {"eta": 0.3})}
    fitted = trainer.fit(params, task, X.iloc[fit], y[fit], None, X.iloc[valid], y[valid])
    scores = trainer.predict(fitted, task, X.iloc[valid])
    expected_shape = (60, 3) if kind == "multiclass" else (60,)
    assert scores.shape == expected_shape and np.isfinite(scores).all()
    if kind == "multiclass":
        assert np.allclose(scores.sum(axis=1), 1.0)
    if kind == "binary":
        assert ((scores >= 0) & (scores <= 1)).all()
        from sklearn.metrics import roc_auc_score

        assert roc_auc_score(y[valid], scores) > 0.7  # it learnt something
    if trainer.early_stopping:
        assert fitted.rounds and fitted.rounds >= 1
        refit = trainer.fit(params, task, X, y, np.ones(len(y)), rounds=fitted.rounds)
        assert trainer.predict(refit, task, X.iloc[valid]).shape == expected_shape
    folder = tmp_path / name
    folder.mkdir()
    file = trainer.save(fitted, folder)
    loaded = trainer.load(folder / file)
    again = trainer.predict(loaded, task, X.iloc[valid])
    assert np.allclose(again, scores, atol=1e-6)
    # a loaded model saves again (a bagged member's fold models are loaded, then registered)
    (tmp_path / "again").mkdir()
    twice = trainer.load(tmp_path / "again" / trainer.save(loaded, tmp_path / "again"))
    assert np.allclose(trainer.predict(twice, task, X.iloc[valid]), scores, atol=1e-6)


def test_the_registry_fails_loudly():
    with pytest.raises(GristmillError, match="no trainer 'gbm' \\(trainers: lightgbm, xgboost"):
        trainers.get("gbm")
    with pytest.raises(GristmillError, match="already registered"):
        trainers.register(trainers.get("lightgbm"))


def test_the_ensemble_never_does_worse_than_its_best_member_on_the_rows_it_saw():
    from gristmill.training.ensemble import greedy_weights
    from gristmill.training.search import Candidate
    from gristmill.training.task import get_metric

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    noisy = [np.clip(y + rng.normal(scale=s, size=400), 0, 1) for s in (0.6, 0.7, 0.8)]
    found = [Candidate(i, "x", {}, 0.0, None, 0.0, p) for i, p in enumerate(noisy)]
    metric = get_metric("roc_auc", "binary")
    weights = greedy_weights(found, y, metric)
    assert abs(sum(weights.values()) - 1.0) < 1e-9
    blend = sum(w * noisy[i] for i, w in weights.items())
    assert metric.score(y, blend) >= max(metric.score(y, p) for p in noisy) - 1e-12
    assert len(weights) > 1  # independent errors: averaging helps


def test_the_ensemble_may_choose_a_family_the_search_ranked_below_many_copies_of_another():
    from gristmill.training.ensemble import POOL, greedy_weights, pool_of
    from gristmill.training.search import Candidate
    from gristmill.training.task import get_metric

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 600)
    shared = rng.normal(scale=0.7, size=600)  # one family's trials: the same errors, nearly
    copies = [Candidate(i, "linear_spline", {}, 0.0, None, 0.0,
                        np.clip(y + shared + rng.normal(scale=0.05, size=600), 0, 1)) for i in range(POOL + 3)]
    other = Candidate(99, "knn", {}, 0.0, None, 0.0, np.clip(y + rng.normal(scale=0.75, size=600), 0, 1))
    found = copies + [other]  # best first: the other family ranks last
    assert [c.number for c in pool_of(found)] == list(range(POOL)) + [99]
    weights = greedy_weights(found, y, get_metric("roc_auc", "binary"))
    assert 99 in weights  # independent errors: the other family joins


@pytest.mark.parametrize("name", ["lightgbm", "xgboost", "catboost", "random_forest", "extra_trees", "mlp"])
def test_a_stopped_fit_keeps_what_it_learnt(name):
    """``Task.stop`` ends boosting (or forest growing, or epochs) at once; the model still predicts."""
    trainer = trainers.get(name)
    X, y = _toy("binary")
    asked = []
    task = Task("binary", 2, threads=1, stop=lambda: asked.append(1) or len(asked) > 3)
    fitted = trainer.fit(dict(trainer.defaults), task, X.iloc[:180], y[:180], None,
                         *((X.iloc[180:], y[180:]) if trainer.early_stopping else (None, None)))
    assert asked, "the trainer never asked whether to stop"
    if trainer.early_stopping:
        assert 1 <= fitted.rounds <= 10
    else:
        assert fitted.native[-1].n_estimators < 200
    assert np.isfinite(trainer.predict(fitted, Task("binary", 2, threads=1), X.iloc[180:])).all()


@pytest.mark.parametrize("name", ["lightgbm", "xgboost"])
def test_boosted_trees_read_many_levels_as_frequency_ranks(name):
    from gristmill.training.trainers.base import MAX_NATIVE_LEVELS, many_levels

    trainer = trainers.get(name)
    X, y = _toy("regression")
    assert many_levels(X) == ["shop"] and len(X["shop"].cat.categories) > MAX_NATIVE_LEVELS
    fitted = trainer.fit(dict(trainer.defaults), Task("regression", threads=1), X, y, rounds=20)
    native = fitted.native
    if name == "lightgbm":
        assert len(native.pandas_categorical) == 1  # color only; shop went in as numbers
    else:
        assert dict(zip(native.feature_names, native.feature_types))["shop"] != "c"
