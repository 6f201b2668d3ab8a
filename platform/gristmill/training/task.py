"""Task detection, target encoding and the metrics a project can select by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gristmill.errors import DataError

TRUTHY = {"1", "true", "yes", "y", "t", "churned", "positive", "pos"}


@dataclass(frozen=True)
class Metric:
    name: str
    greater_is_better: bool
    needs_proba: bool
    fn: Callable

    def score(self, y_true, predicted) -> float:
        return float(self.fn(y_true, predicted))


def _metrics() -> dict[str, Metric]:
    from sklearn import metrics as m

    def rmse(y, p):
        return m.mean_squared_error(y, p) ** 0.5

    def accuracy(y, proba):
        import numpy as np

        proba = np.asarray(proba)
        labels = proba.argmax(axis=1) if proba.ndim == 2 else (proba >= 0.5).astype(int)
        return m.accuracy_score(y, labels)

    def log_loss(y, proba):
        import numpy as np

        proba = np.asarray(proba)
        labels = list(range(proba.shape[1])) if proba.ndim == 2 else [0, 1]
        return m.log_loss(y, proba, labels=labels)

    def labels(proba):
        import numpy as np

        proba = np.asarray(proba)
        return proba.argmax(axis=1) if proba.ndim == 2 else (proba >= 0.5).astype(int)

    def f1(y, proba):
        import numpy as np

        proba = np.asarray(proba)
        return m.f1_score(y, labels(proba), average="macro" if proba.ndim == 2 else "binary")

    return {
        "roc_auc": Metric("roc_auc", True, True, m.roc_auc_score),
        "log_loss": Metric("log_loss", False, True, log_loss),
        "accuracy": Metric("accuracy", True, True, accuracy),
        "f1": Metric("f1", True, True, f1),
        "average_precision": Metric("average_precision", True, True, m.average_precision_score),
        "rmse": Metric("rmse", False, False, rmse),
        "mae": Metric("mae", False, False, m.mean_absolute_error),
        "mape": Metric("mape", False, False, m.mean_absolute_percentage_error),
        "r2": Metric("r2", True, False, m.r2_score),
    }


DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
TASK_METRICS = {
    "binary": {"roc_auc", "log_loss", "accuracy", "f1", "average_precision"},
    "multiclass": {"log_loss", "accuracy", "f1"},
    "regression": {"rmse", "mae", "mape", "r2"},
}


def get_metric(name: str, task: str) -> Metric:
    chosen = DEFAULT_METRIC[task] if name == "auto" else name
    if chosen not in TASK_METRICS[task]:
        raise DataError(f"training.metric: {chosen!r} does not fit a {task} task "
                        f"(choose one of {', '.join(sorted(TASK_METRICS[task]))})")
    return _metrics()[chosen]


def detect_task(target, requested: str = "auto") -> str:
    """'binary', 'multiclass' or 'regression' from the target column (a pandas Series)."""
    import pandas as pd

    values = target.dropna()
    if values.empty:
        raise DataError("label.target: the target column has no values")
    if requested != "auto":
        return requested
    distinct = values.nunique()
    if distinct == 2:
        return "binary"
    if pd.api.types.is_float_dtype(values) or (pd.api.types.is_integer_dtype(values) and distinct > 20):
        return "regression"
    if distinct < 2:
        raise DataError("label.target: the target has a single value; nothing to learn")
    if distinct > 50:
        raise DataError(f"label.target: {distinct} distinct text values are too many classes; "
                        "set training.task: regression if it is a number")
    return "multiclass"


def class_order(values) -> list:
    """Classes in a stable order; for a binary target the 'positive' one (Yes/true/1) comes last."""
    classes = sorted(values.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
    if len(classes) == 2:
        first_truthy = str(classes[0]).strip().lower() in TRUTHY
        second_truthy = str(classes[1]).strip().lower() in TRUTHY
        if first_truthy and not second_truthy:
            classes.reverse()
    return classes
