"""The request path's array encodings give exactly what the fitted sklearn transformers and the
pandas paths give, on messy frames: missing numbers and levels, rare and unseen levels, values
beyond the training range, constant columns, levels in another order."""

import numpy as np
import pandas as pd
import pytest

from gristmill.training import trainers
from gristmill.training.trainers import Task
from gristmill.training.trainers.base import (as_strings, categorical_columns, object_matrix,
                                              reading)
from gristmill.training.trainers.encoding import FastEncoder, encode, encoder_of

SKLEARN_FAMILIES = ["linear", "linear_spline", "random_forest", "extra_trees", "knn"]
LEVELS = ["blue", "green", "red", "rare"]


def _frame(n: int, seed: int, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(scale=spread, size=n)
    x1[::7] = np.nan
    colour = rng.choice(["blue", "green", "red"], n).astype(object)
    colour[::5] = None
    colour[3] = "rare"  # one row: grouped as infrequent
    return pd.DataFrame({
        "x1": x1,
        "x2": rng.exponential(size=n) * spread,
        "flat": np.full(n, 3.0),  # constant at training
        "colour": pd.Categorical(colour, categories=LEVELS),
        "size": pd.Categorical(rng.choice(["s", "m", "l"], n), categories=["s", "m", "l"]),
    })


def _task(kind):
    return Task(kind, 3 if kind == "multiclass" else 2 if kind == "binary" else 0, threads=1)


def _labels(X, kind, seed=0):
    rng = np.random.default_rng(seed)
    signal = np.nan_to_num(X["x1"].to_numpy()) + (X["colour"] == "red").to_numpy() * 1.5
    if kind == "binary":
        return (signal + rng.normal(scale=0.5, size=len(X)) > 0.5).astype(int)
    if kind == "multiclass":
        return np.select([signal < -0.3, signal < 0.9], [0, 1], 2)
    return 2.0 * signal + rng.normal(scale=0.2, size=len(X))


def _transformer(name, fitted):
    return fitted.native.encoder if name == "knn" else fitted.native[0]


@pytest.mark.parametrize("name", SKLEARN_FAMILIES)
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_the_fast_encoding_equals_the_fitted_column_transformer(name, kind):
    trainer = trainers.get(name)
    X = _frame(300, seed=1)
    fitted = trainer.fit(dict(trainer.defaults), _task(kind), X, _labels(X, kind))
    # new rows: wider spread (beyond the training range), the constant column moved, a level
    # the training rows never had missing, and no rows of a level at all
    new = _frame(80, seed=2, spread=3.0)
    new["flat"] = np.linspace(-5.0, 9.0, len(new))
    new.loc[new.index[:4], "size"] = None
    transformer = _transformer(name, fitted)
    fast = encoder_of(fitted, transformer, new)
    assert isinstance(fast, FastEncoder)
    got = fast.encode(new)
    assert got is not None  # the fast path was taken
    want = np.asarray(transformer.transform(as_strings(new, categorical_columns(new))), dtype="float64")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # and the member's predictions are those of the sklearn pipeline itself
    scores = trainer.predict(fitted, _task(kind), new)
    if name != "knn":
        model = fitted.native
        data = as_strings(new, categorical_columns(new))
        direct = model.predict(data) if kind == "regression" else model.predict_proba(data)
        direct = direct[:, 1] if kind == "binary" else direct
        np.testing.assert_allclose(scores, direct, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["linear", "knn"])
def test_a_frame_with_its_levels_in_another_order_takes_the_transformers_own_path(name):
    trainer = trainers.get(name)
    X = _frame(200, seed=3)
    fitted = trainer.fit(dict(trainer.defaults), _task("binary"), X, _labels(X, "binary"))
    new = _frame(40, seed=4)
    shuffled = new.copy()
    shuffled["colour"] = shuffled["colour"].cat.reorder_categories(LEVELS[::-1])  # same set, new codes
    transformer = _transformer(name, fitted)
    assert encoder_of(fitted, transformer, new).encode(shuffled) is None
    np.testing.assert_allclose(encode(fitted, transformer, shuffled), encode(fitted, transformer, new),
                               rtol=0, atol=1e-12)


def test_as_strings_keeps_its_meaning_for_any_level_type():
    X = pd.DataFrame({
        "text": pd.Categorical(["a", None, "b"], categories=["b", "a"]),
        "ints": pd.Categorical([1, 2, None], categories=[2, 1]),
        "plain": pd.Series(["x", None, 3], dtype=object),
        "n": [1.0, np.nan, 2.0],
        "days": pd.Categorical(pd.to_datetime(["2024-01-02", None, "2024-01-02"])),
    })
    got = as_strings(X, ["text", "ints", "plain", "days"])
    for col in ("text", "ints", "plain", "days"):
        want = X[col].astype("object").where(X[col].notna(), "__missing__").astype(str)
        assert list(got[col]) == list(want)
    assert got["n"].equals(X["n"]) and list(got.columns) == list(X.columns)
    matrix = object_matrix(X, ["text", "ints"])
    assert matrix[:, 0].tolist() == ["a", "__missing__", "b"] and matrix[:, 1].tolist() == ["1", "2", "__missing__"]
    assert matrix[0, 3] == 1.0 and np.isnan(matrix[1, 3])


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_catboost_scores_the_object_array_as_it_scores_the_frame(kind, tmp_path):
    trainer = trainers.get("catboost")
    X = _frame(300, seed=5)
    params = {**trainer.defaults, "learning_rate": 0.3}
    fitted = trainer.fit(params, _task(kind), X.iloc[:240], _labels(X, kind)[:240], None,
                         X.iloc[240:], _labels(X, kind)[240:])
    loaded = trainer.load(tmp_path / trainer.save(fitted, tmp_path))
    new = _frame(50, seed=6, spread=3.0)
    model = loaded.native
    frame_path = (model.predict(as_strings(new, categorical_columns(new))) if kind == "regression"
                  else model.predict_proba(as_strings(new, categorical_columns(new))))
    frame_path = frame_path[:, 1] if kind == "binary" else frame_path
    with reading(new):
        np.testing.assert_allclose(trainer.predict(loaded, _task(kind), new), frame_path, rtol=0, atol=1e-12)
    # columns in another order are read by name, not by position
    np.testing.assert_allclose(trainer.predict(loaded, _task(kind), new[new.columns[::-1]]), frame_path,
                               rtol=0, atol=1e-12)


def test_the_models_frames_code_levels_alike_from_records_and_from_frames():
    from gristmill.training.model import TabularModel

    model = TabularModel("p", "binary", ["n", "c"], ["n"], {"c": ["a", "b"]}, classes=[0, 1])
    rows = [{"n": 1, "c": "b"}, {"n": None, "c": "zzz"}, {"c": None}, {"n": "2.5", "c": 7}]
    from_records = model.frame(rows)
    from_frame = model.frame(pd.DataFrame(rows))
    for frame in (from_records, from_frame, model.frame(rows[:1])):
        assert frame["c"].dtype.categories.tolist() == ["a", "b"]
    assert from_records["c"].array.codes.tolist() == from_frame["c"].array.codes.tolist() == [1, -1, -1, -1]
    np.testing.assert_array_equal(from_records["n"].to_numpy(), from_frame["n"].to_numpy())


@pytest.mark.parametrize("name", trainers.names())
def test_every_trainer_scores_a_frame_by_column_name_not_position(name):
    """A frame with the training columns in another order scores the same (LightGBM and CatBoost
    read columns by position: unchecked, each feature would be scored as another)."""
    trainer = trainers.get(name)
    X = _frame(240, seed=7)
    y = _labels(X, "binary")
    params = dict(trainer.defaults)
    if trainer.quick_params is not None:
        params = {**params, **trainer.quick_params}
    elif trainer.early_stopping:
        params = {**params, **({"learning_rate": 0.3} if "learning_rate" in params else {"eta": 0.3})}
    fitted = trainer.fit(params, _task("binary"), X.iloc[:180], y[:180], None, X.iloc[180:], y[180:])
    new = _frame(40, seed=8)
    np.testing.assert_allclose(trainer.predict(fitted, _task("binary"), new[new.columns[::-1]]),
                               trainer.predict(fitted, _task("binary"), new), rtol=0, atol=1e-9)
