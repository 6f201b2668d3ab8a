"""Calibrated probabilities: the ensemble's scores recalibrated on its out-of-fold predictions.

Averaging members, early-stopped boosters and few rows per class all leave probabilities too flat
or too sharp, and log loss pays for it. After the ensemble is chosen, each method below is scored
by K-fold cross-validation *on the out-of-fold rows* (fit on K-1 parts, log loss on the last), and
the best is kept only if it beats leaving the scores alone:

- ``temperature``: one number T, ``softmax(log p / T)`` (binary: ``sigmoid(logit / T)``). It
  never changes which class scores highest, nor the order of binary scores, so accuracy, F1 at the
  0.5 threshold and ROC AUC are untouched; only the confidence moves.
- ``isotonic`` (binary, only when the metric scores probabilities: log loss or Brier): a monotone
  step map of the positive class's probability, which can repair shapes a temperature cannot.

The choice is plain data in the model (``TabularModel.calibration``) and :func:`apply` runs inside
``TabularModel.scores``, so training's holdout, the registry's pyfunc, batch scoring and every
served request see the same calibrated probabilities.
"""

from __future__ import annotations

from typing import Any

FOLDS = 5
#: Log loss a method must save (per row, relative) over leaving the scores alone to be kept.
MIN_GAIN = 1e-3
EPS = 1e-7
#: Clip for the logits of binary scores: tiny, so that distinct scores stay distinct (ROC AUC kept).
LOGIT_EPS = 1e-15
PROBABILITY_METRICS = {"log_loss", "brier"}


def fit(task: str, oof, y, metric_name: str, seed: int = 0) -> dict[str, Any] | None:
    """The calibration to keep for out-of-fold scores ``oof`` of labels ``y`` (codes), or None."""
    import numpy as np

    if task not in ("binary", "multiclass"):
        return None
    oof, y = np.asarray(oof, dtype="float64"), np.asarray(y).astype(int)
    if len(y) < 4 * FOLDS or len(np.unique(y)) < 2:
        return None
    methods = ["temperature"] + (["isotonic"] if task == "binary" and metric_name in PROBABILITY_METRICS else [])
    rng = np.random.default_rng(seed)
    parts = np.array_split(rng.permutation(len(y)), FOLDS)
    losses = {"none": _log_loss(task, oof, y)}
    for method in methods:
        total = 0.0
        for k in range(FOLDS):
            test = parts[k]
            train = np.concatenate([parts[j] for j in range(FOLDS) if j != k])
            params = _fit_method(method, task, oof[train], y[train])
            total += _log_loss(task, apply(params, task, oof[test]), y[test]) * len(test)
        losses[method] = total / len(y)
    best = min(losses, key=losses.get)
    if best == "none" or losses[best] > losses["none"] * (1 - MIN_GAIN):
        return None
    params = _fit_method(best, task, oof, y)
    params["cv_log_loss"] = {k: round(float(v), 6) for k, v in losses.items()}
    return params


def apply(calibration: dict | None, task: str, scores):
    """``scores`` in the trainers' shape (binary: P(positive); multiclass: rows x classes),
    recalibrated; unchanged without a calibration."""
    import numpy as np

    if not calibration:
        return scores
    scores = np.asarray(scores, dtype="float64")
    method = calibration["method"]
    if method == "temperature":
        t = float(calibration["temperature"])
        if task == "binary":
            p = np.clip(scores, LOGIT_EPS, 1 - LOGIT_EPS)
            return 1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p)) / t))
        logits = np.log(np.clip(scores, EPS, 1.0)) / t
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)
    if method == "isotonic":
        return np.clip(np.interp(scores, calibration["x"], calibration["y"]), EPS, 1 - EPS)
    raise ValueError(f"unknown calibration method {method!r}")


def _fit_method(method: str, task: str, oof, y) -> dict[str, Any]:
    import numpy as np

    if method == "temperature":
        from scipy.optimize import minimize_scalar

        found = minimize_scalar(lambda log_t: _log_loss(task, apply({"method": "temperature",
                                                                     "temperature": np.exp(log_t)}, task, oof), y),
                                bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-3})
        return {"method": "temperature", "temperature": round(float(np.exp(found.x)), 6)}
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=EPS, y_max=1 - EPS, out_of_bounds="clip").fit(oof, y)
    return {"method": "isotonic", "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_]}


def _log_loss(task: str, scores, y) -> float:
    import numpy as np

    if task == "binary":
        p = np.clip(scores, EPS, 1 - EPS)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    p = np.clip(scores[np.arange(len(y)), y], EPS, 1.0)
    return float(-np.mean(np.log(p)))
