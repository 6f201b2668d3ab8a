"""A second layer: a regularised linear model over the ensemble members' predictions, kept only when
it beats the greedy weights on rows it never saw.

The greedy ensemble (:mod:`gristmill.training.ensemble`) gives each member one weight for every
class and every row. A stacker learns one weight per member *and class* and an offset: on a table
of many classes where one family separates some classes and another family the rest, or where
every member is biased the same way, it does better. It is fit on the members' out-of-fold
predictions (so no member has seen the rows it is judged on) and scored by K-fold cross-validation
on those rows, against the greedy ensemble's own score there (which is optimistic, its weights
were chosen on the same rows): the stacker is kept only if it still wins by :data:`MIN_GAIN`.

Inputs per member: binary, the logit of P(positive); multiclass, the log of every class's
probability; regression, the value. They are standardised, then: logistic regression (binary,
multinomial) or ridge regression. The fitted layer is plain data (coefficients with the
standardisation folded in) in ``TabularModel.stacker``, applied by :func:`apply` inside
``TabularModel.scores``, so the holdout, the registry's pyfunc and every served request agree.
A stacked model is not recalibrated: the logistic layer fits probabilities itself.
"""

from __future__ import annotations

from typing import Any

FOLDS = 5
#: Relative improvement of the metric (of its loss for a loss) the stacker must show to be kept.
MIN_GAIN = 2e-3
EPS = 1e-7
C = 1.0  # inverse regularisation of the logistic layer
ALPHA = 1.0  # ridge penalty of the regression layer


def inputs(task: str, predictions: list):
    """The layer's input matrix from the members' predictions (each in the trainers' shape)."""
    import numpy as np

    cols = []
    for p in predictions:
        p = np.asarray(p, dtype="float64")
        if task == "binary":
            q = np.clip(p, EPS, 1 - EPS)
            cols.append((np.log(q) - np.log1p(-q)).reshape(-1, 1))
        elif task == "multiclass":
            cols.append(np.log(np.clip(p, EPS, 1.0)))
        else:
            cols.append(p.reshape(-1, 1))
    return np.hstack(cols)


def _fit_layer(task: str, Z, y, n_classes: int = 0) -> dict[str, Any]:
    import numpy as np

    mean, scale = Z.mean(axis=0), Z.std(axis=0)
    scale[scale < 1e-12] = 1.0
    S = (Z - mean) / scale
    if task == "regression":
        from sklearn.linear_model import Ridge

        layer = Ridge(alpha=ALPHA).fit(S, y)
        coef, intercept = np.atleast_2d(layer.coef_), np.atleast_1d(layer.intercept_)
    else:
        from sklearn.linear_model import LogisticRegression

        layer = LogisticRegression(C=C, max_iter=2000).fit(S, y)
        coef, intercept = layer.coef_, layer.intercept_
        if task == "multiclass" and len(layer.classes_) != n_classes:
            raise ValueError("a class is missing from the stacker's rows")
    # fold the standardisation in: (Z - mean) / scale @ coef.T + b == Z @ (coef / scale).T + b'
    folded = coef / scale
    return {"method": "linear", "coef": folded.tolist(),
            "intercept": (intercept - folded @ mean).tolist()}


def apply(stacker: dict, task: str, Z):
    """The layer's scores of input matrix ``Z`` in the trainers' shape."""
    import numpy as np

    raw = Z @ np.asarray(stacker["coef"]).T + np.asarray(stacker["intercept"])
    if task == "regression":
        return raw[:, 0]
    if task == "binary":
        return 1.0 / (1.0 + np.exp(-raw[:, 0]))
    raw -= raw.max(axis=1, keepdims=True)
    e = np.exp(raw)
    return e / e.sum(axis=1, keepdims=True)


def fit(task: str, predictions: list, y, metric, greedy_score: float, seed: int = 0) -> dict[str, Any] | None:
    """The stacker over members' out-of-fold ``predictions`` (rows that have them) of labels ``y``,
    or None when it does not beat ``greedy_score`` by :data:`MIN_GAIN` in cross-validation."""
    import numpy as np

    y = np.asarray(y)
    if len(predictions) < 2 or len(y) < 10 * FOLDS:
        return None
    Z = inputs(task, predictions)
    if task != "regression":
        y = y.astype(int)
        counts = np.bincount(y)
        if (counts[counts > 0] < FOLDS).any():
            return None  # a class too rare to reach every fold
    from sklearn.model_selection import KFold, StratifiedKFold

    split = (KFold if task == "regression" else StratifiedKFold)(FOLDS, shuffle=True, random_state=seed)
    shape = (len(y), Z.shape[1] // len(predictions)) if task == "multiclass" else (len(y),)
    oof = np.zeros(shape)
    try:
        for train, test in split.split(Z, y):
            oof[test] = apply(_fit_layer(task, Z[train], y[train], shape[-1]), task, Z[test])
    except ValueError:
        return None  # a fold without every class
    stacked = float(metric.score(y, oof))
    better = stacked > greedy_score * (1 + np.sign(greedy_score) * MIN_GAIN) if metric.greater_is_better \
        else stacked < greedy_score * (1 - MIN_GAIN)
    if not better:
        return None
    layer = _fit_layer(task, Z, y, shape[-1])
    layer["cv"] = {"stacked": round(stacked, 6), "greedy": round(float(greedy_score), 6)}
    return layer
