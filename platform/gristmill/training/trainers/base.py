"""The contract every trainer (model family) keeps, and the data it is handed.

A trainer is a small class: its known-good defaults and its search space are plain data beside
it; ``fit`` trains on one split (early-stopping on the validation part when the family has it) and
``predict`` returns scores in one shape for every family: P(positive class) for binary tasks, a
(rows x classes) matrix for multiclass, values for regression. Every trainer receives the same
frame (float64 numbers, pandas categoricals with the training levels) and converts it itself, so
each uses its library's native categorical handling where there is one.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

MAX_ROUNDS = 3000
EARLY_STOPPING_ROUNDS = 50
#: Categorical columns with more levels than this reach the boosted trees (LightGBM, XGBoost) as
#: numbers: the level's rank by training frequency (the schema keeps levels most frequent first).
#: Native categorical splits over thousands of levels overfit: on flights' 3,623 tail numbers,
#: ROC AUC 0.693 native against 0.743 as ranks (LightGBM defaults, 25% validation).
MAX_NATIVE_LEVELS = 32


@dataclass
class Task:
    """What is learnt: ``kind`` (binary, multiclass, regression), class count, threads to use."""

    kind: str
    n_classes: int = 0
    threads: int = 2
    seed: int = 42
    #: Epochs of the neural trainers (their maximum when they stop early); None: their default.
    epochs: int | None = None
    #: Asked between boosting rounds, epochs or tree batches: True ends the fit there with what it
    #: has learnt so far (the search's deadline, a pruned trial, a fit's share of the time).
    stop: Callable[[], bool] | None = None

    def should_stop(self) -> bool:
        return self.stop is not None and self.stop()


@dataclass
class Fitted:
    """A trained native model and the boosting rounds it ended with (for refits)."""

    native: Any
    rounds: int | None = None
    extra: dict = field(default_factory=dict)


class Trainer(ABC):
    """A model family. Subclasses set ``name``, ``defaults`` and ``space`` and implement the rest."""

    name: ClassVar[str]
    #: The first trial of this family: a configuration known to do well on most tables.
    defaults: ClassVar[dict[str, Any]]
    #: Search space, param -> ("int" | "int_log" | "float" | "float_log", low, high) or ("choice", [..]).
    space: ClassVar[dict[str, tuple]]
    #: Whether ``fit`` uses the validation part to stop early (and reports ``rounds``).
    early_stopping: ClassVar[bool] = False
    #: Parameters that keep a fit on toy data short (the shared contract test uses them); None:
    #: the contract test's own rule for boosted trees (a learning rate of 0.3).
    quick_params: ClassVar[dict[str, Any] | None] = None

    def inputs(self, X):
        """The columns of the model frame this family reads: by default every number and category,
        not the raw text columns (pandas ``string`` dtype; their encodings are numbers already)."""
        return tabular_view(X)

    def suggest(self, trial) -> dict[str, Any]:
        """Sample one point of :attr:`space` (param names prefixed by the trainer's name)."""
        params = {}
        for key, (kind, *bounds) in self.space.items():
            name = f"{self.name}.{key}"
            if kind == "choice":
                params[key] = trial.suggest_categorical(name, bounds[0])
            elif kind.startswith("int"):
                params[key] = trial.suggest_int(name, bounds[0], bounds[1], log=kind.endswith("log"))
            else:
                params[key] = trial.suggest_float(name, bounds[0], bounds[1], log=kind.endswith("log"))
        return params

    @abstractmethod
    def fit(self, params: dict, task: Task, X, y, weight=None, X_valid=None, y_valid=None,
            rounds: int | None = None) -> Fitted:
        """Train on ``X, y``; with ``X_valid`` stop early on it; with ``rounds`` train that many."""

    @abstractmethod
    def predict(self, fitted: Fitted, task: Task, X):
        """Scores of ``X`` (see the module docstring for their shape)."""

    @abstractmethod
    def save(self, fitted: Fitted, folder: Path) -> str:
        """Write the model into ``folder``; return the file name."""

    @abstractmethod
    def load(self, path: Path) -> Fitted:
        """Read a model written by :meth:`save`."""


def tabular_view(X):
    """``X`` without its raw text columns (pandas ``string`` dtype)."""
    import pandas as pd

    text = [c for c, dtype in X.dtypes.items() if isinstance(dtype, pd.StringDtype)]
    return X.drop(columns=text) if text else X


def text_columns(X) -> list[str]:
    import pandas as pd

    return [c for c, dtype in X.dtypes.items() if isinstance(dtype, pd.StringDtype)]


MISSING_LEVEL = "__missing__"


def level_strings(dtype):
    """A categorical dtype's levels as an object array of strings, ``"__missing__"`` last, so
    indexing it with the column's codes (missing: -1) gives each value's string at once."""
    import numpy as np

    values = dtype.categories.to_numpy(dtype=object)
    if not all(type(v) is str for v in values):  # str() of each value, as ``astype(str)`` of them
        values = np.array([str(v) for v in values], dtype=object)
    return np.append(values, MISSING_LEVEL)


def strings_of(X, col: str, read: "FrameArrays | None" = None):
    """Column ``col`` of ``X`` as an object array of strings (missing -> "__missing__");
    ``read``: ``X``'s :class:`FrameArrays` when the caller has them."""
    import pandas as pd

    categorical = (read.categoricals if read is not None else {}).get(col)
    if categorical is None and isinstance(X[col].dtype, pd.CategoricalDtype):
        categorical = X[col].array
    if categorical is not None:
        return level_strings(categorical.dtype)[categorical.codes]
    values = X[col]
    return values.astype("object").where(values.notna(), MISSING_LEVEL).astype(str).to_numpy()


class FrameArrays:
    """A model frame's columns read once as arrays: the numeric columns as one float block
    (:meth:`numbers`), each categorical as its pandas ``Categorical`` (``categoricals``). Taking a
    column of a new DataFrame costs ~25 us; a member of an ensemble takes dozens per request."""

    def __init__(self, X) -> None:
        import numpy as np
        import pandas as pd

        self.categoricals, numbers = {}, []
        for col, dtype in X.dtypes.items():
            if isinstance(dtype, pd.CategoricalDtype):
                self.categoricals[col] = X[col].array
            elif dtype.kind in "fiub":
                numbers.append(col)
        self.index = {c: i for i, c in enumerate(numbers)}
        self.block = X[numbers].to_numpy(dtype="float64") if numbers else np.empty((len(X), 0))

    def numbers(self, columns: list[str]):
        """The float block of ``columns``, in that order (a new array)."""
        return self.block[:, [self.index[c] for c in columns]]

    def has_numbers(self, columns) -> bool:
        return all(c in self.index for c in columns)


_reading = threading.local()


@contextmanager
def reading(X):
    """While it lasts, :func:`arrays` of ``X`` reads the frame once for every caller (the members
    of one ensemble scoring one frame, which nobody changes meanwhile)."""
    saved = getattr(_reading, "state", None)
    _reading.state = [X, None]
    try:
        yield
    finally:
        _reading.state = saved


def arrays(X) -> FrameArrays:
    """``X``'s :class:`FrameArrays`: read once inside :func:`reading` of ``X``, else each time."""
    state = getattr(_reading, "state", None)
    if state is None or state[0] is not X:
        return FrameArrays(X)
    if state[1] is None:
        state[1] = FrameArrays(X)
    return state[1]


def as_strings(X, categories: list[str]):
    """``X`` with its categorical columns as plain strings (missing -> "__missing__")."""
    import pandas as pd

    if not categories:
        return X
    wanted = set(categories)
    return pd.DataFrame({c: strings_of(X, c) if c in wanted else X[c] for c in X.columns},
                        index=X.index, copy=False)


def object_matrix(X, categories: list[str]):
    """``X`` as one object array, its categorical columns as strings as in :func:`as_strings`
    (CatBoost predicts from it about three times faster than from a DataFrame)."""
    import numpy as np

    out = np.empty(X.shape, dtype=object)
    wanted, read = set(categories), arrays(X)
    for j, col in enumerate(X.columns):
        if col in wanted:
            out[:, j] = strings_of(X, col, read)
        elif col in read.index:
            out[:, j] = read.block[:, read.index[col]]
        else:
            out[:, j] = X[col].to_numpy()
    return out


def in_order(X, names):
    """``X`` with its columns in the model's training order ``names`` when it has the same
    columns in another order: LightGBM and CatBoost read a frame's columns by position, so a
    reordered frame would be scored feature for the wrong feature. Anything else is returned as
    it is (the library then checks what it can)."""
    names = list(names or [])
    if not names or list(X.columns) == names or set(X.columns) != set(names) or len(names) != X.shape[1]:
        return X
    return X[names]


def categorical_columns(X) -> list[str]:
    import pandas as pd

    return [c for c, dtype in X.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)]


def as_ranks(X, columns):
    """``X`` with the categorical ``columns`` replaced by their level codes (missing -> NaN)."""
    import numpy as np

    if not columns:
        return X
    out = X.copy(deep=False)
    for col in columns:
        codes = X[col].cat.codes.to_numpy().astype("float64")
        codes[codes < 0] = np.nan
        out[col] = codes
    return out


def many_levels(X) -> list[str]:
    """The categorical columns of ``X`` with more than :data:`MAX_NATIVE_LEVELS` levels."""
    import pandas as pd

    return [c for c, dtype in X.dtypes.items()
            if isinstance(dtype, pd.CategoricalDtype) and len(dtype.categories) > MAX_NATIVE_LEVELS]
