"""The scikit-learn encodings of the model frame, applied without pandas on the request path.

The sklearn-based trainers (``linear``, ``linear_spline``, the forests, ``knn``) encode the model
frame with a fitted ``ColumnTransformer``: number pipelines (imputing, scaling, splines, missing
flags) and a one-hot encoder over the categories as strings. Called on a DataFrame, that costs
10-25 ms for a single row, almost all of it pandas and input checks, not arithmetic.

:class:`FastEncoder` is built once from the fitted transformer and gives the same matrix:
- each number pipeline runs on a float array of its columns (a copy of the fitted pipeline
  that no longer expects column names, so no per-call name checks);
- each one-hot encoder becomes one table per column, made by asking the fitted encoder itself
  for the code of every training level (and of a missing value), so unknown, rare and missing
  levels land exactly where the encoder puts them; a row's block is then a table lookup by the
  categorical's code.
It applies only to frames whose categorical levels are the ones it was built for (every frame
:meth:`gristmill.training.model.TabularModel.frame` makes); any other frame takes the fitted
transformer's own path. Tests hold the two equal.
"""

from __future__ import annotations

import copy
from typing import Any

from gristmill.training.trainers.base import MISSING_LEVEL


def _array_steps(transformer) -> list:
    """The steps of a fitted transformer (a pipeline or one step), copied so they accept plain
    arrays: no column names expected, and a spline step over shared knots evaluated at once."""
    from sklearn.preprocessing import QuantileTransformer, SplineTransformer

    out = []
    for step in [s for _, s in transformer.steps] if hasattr(transformer, "steps") else [transformer]:
        if isinstance(step, SplineTransformer):
            try:
                out.append(SharedKnotSplines(step))
                continue
            except TypeError:
                pass
        if isinstance(step, QuantileTransformer) and step.output_distribution == "uniform":
            out.append(UniformQuantiles(step))
            continue
        step = copy.deepcopy(step)
        step.__dict__.pop("feature_names_in_", None)
        out.append(step)
    return out


class UniformQuantiles:
    """A fitted ``QuantileTransformer`` with uniform output, column by column as sklearn's own
    ``_transform_col`` computes it (the mean of a forward and a backward interpolation, the
    quantiles' ends mapped to 0 and 1) without its per-call checks and copies."""

    def __init__(self, fitted) -> None:
        import numpy as np

        self.columns = [(np.ascontiguousarray(q), np.ascontiguousarray(-q[::-1]))
                        for q in fitted.quantiles_.T]
        self.references = fitted.references_
        self.backward = -fitted.references_[::-1]

    def transform(self, X):
        import numpy as np

        out = np.array(X, dtype="float64")
        for j, (q, q_back) in enumerate(self.columns):
            x = out[:, j]
            upper, lower = x == q[-1], x == q[0]
            finite = ~np.isnan(x)
            seen = x[finite]
            x[finite] = 0.5 * (np.interp(seen, q, self.references) - np.interp(-seen, q_back, self.backward))
            x[upper] = 1
            x[lower] = 0
        return out


class SharedKnotSplines:
    """A fitted ``SplineTransformer`` (dense output, constant extrapolation, bias kept) whose
    features all have the same knots, as ``linear_spline`` fits them: the basis is evaluated for
    every value of every column in one call instead of one call per column, with sklearn's own
    rule at the boundaries (values below or above the knots take the boundary's basis values,
    missing values none)."""

    def __init__(self, fitted) -> None:
        import numpy as np

        first = fitted.bsplines_[0]
        same = all(np.array_equal(b.t, first.t) and b.k == first.k and np.array_equal(b.c, first.c)
                   for b in fitted.bsplines_)
        if fitted.extrapolation != "constant" or fitted.sparse_output or not fitted.include_bias or not same:
            raise TypeError("SharedKnotSplines: not this kind of spline step")
        self.spline, self.degree = first, fitted.degree
        self.xmin, self.xmax = first.t[fitted.degree], first.t[-fitted.degree - 1]
        self.f_min, self.f_max = first(self.xmin), first(self.xmax)
        self.n_splines = first.c.shape[1]

    def transform(self, X):
        import numpy as np

        X = np.asarray(X, dtype="float64")
        n, p = X.shape
        d, width = self.degree, self.n_splines
        out = np.zeros((n, p, width))
        inside = (self.xmin <= X) & (X <= self.xmax)
        out[inside] = self.spline(X[inside])
        out[X < self.xmin, :d] = self.f_min[:d]
        out[X > self.xmax, width - d:] = self.f_max[width - d:]
        return out.reshape(n, p * width)


class FastEncoder:
    """A fitted ``ColumnTransformer`` of sklearn's, turned into array operations (see the module
    docstring). ``encode(X)`` returns its ``transform(as_strings(X))`` or None when ``X`` is not a
    frame it can read (then the caller uses the transformer)."""

    def __init__(self, transformer, X) -> None:
        import pandas as pd
        from sklearn.preprocessing import OneHotEncoder

        self.parts: list[tuple[str, list[str], Any]] = []
        self.dtypes: dict[str, Any] = {}
        for name, step, columns in transformer.transformers_:
            columns = list(columns) if not isinstance(columns, str) else [columns]
            if isinstance(step, str) or not columns:  # "drop" / "passthrough" / nothing to encode
                if step == "passthrough" and columns:
                    raise TypeError("FastEncoder: passthrough columns are not supported")
                continue
            if isinstance(step, OneHotEncoder):
                for col in columns:
                    if not isinstance(X[col].dtype, pd.CategoricalDtype):
                        raise TypeError(f"FastEncoder: {col!r} is not categorical")
                    self.dtypes[col] = X[col].dtype
                self.parts.append(("onehot", columns, self._tables(step, columns)))
            else:
                self.parts.append(("numbers", columns, _array_steps(step)))

    def _tables(self, encoder, columns: list[str]) -> list:
        """One (levels + 1) x block-width table per column: the fitted encoder's own output for
        each training level in code order and, last, for a missing value."""
        import numpy as np
        import pandas as pd

        from gristmill.training.trainers.base import level_strings

        probes = {c: level_strings(self.dtypes[c]) for c in columns}
        rows = max(len(p) for p in probes.values())
        frame = pd.DataFrame({c: np.append(p, [MISSING_LEVEL] * (rows - len(p))) for c, p in probes.items()})
        encoded = np.asarray(encoder.transform(frame), dtype="float64")
        widths = list(encoder._n_features_outs)
        if sum(widths) != encoded.shape[1]:
            raise TypeError("FastEncoder: the one-hot encoder's blocks do not add up")
        tables, start = [], 0
        for col, width in zip(columns, widths):
            tables.append(np.ascontiguousarray(encoded[:len(probes[col]), start:start + width]))
            start += width
        return tables

    def encode(self, X):
        import numpy as np

        from gristmill.training.trainers.base import arrays

        read = arrays(X)
        for col, dtype in self.dtypes.items():
            found = read.categoricals.get(col)
            # the codes index the tables: the levels must be the same, in the same order
            if found is None or (found.dtype is not dtype and not found.dtype.categories.equals(dtype.categories)):
                return None
        blocks = []
        for kind, columns, step in self.parts:
            if kind == "numbers":
                if not read.has_numbers(columns):
                    return None
                block = read.numbers(columns)
                for one in step:
                    block = one.transform(block)
                blocks.append(np.asarray(block, dtype="float64"))
            else:
                for col, table in zip(columns, step):
                    blocks.append(table[read.categoricals[col].codes])  # code -1 (missing): the last row
        if not blocks:
            return np.empty((len(X), 0))
        return np.hstack(blocks)


def encoder_of(fitted, transformer, X):
    """The :class:`FastEncoder` of ``transformer`` (a fitted ColumnTransformer kept in ``fitted``),
    built at the first call and kept on ``fitted``; None when the transformer has parts it does
    not cover."""
    cached = fitted.extra.get("_fast_encoder", False)
    if cached is False:
        try:
            cached = FastEncoder(transformer, X)
        except (TypeError, AttributeError, KeyError):
            cached = None
        fitted.extra["_fast_encoder"] = cached
    return cached


def encode(fitted, transformer, X):
    """``transformer.transform(as_strings(X))`` as a float array, by the fast path when it applies."""
    import numpy as np

    from gristmill.training.trainers.base import as_strings, categorical_columns

    fast = encoder_of(fitted, transformer, X)
    if fast is not None:
        out = fast.encode(X)
        if out is not None:
            return out
    return np.asarray(transformer.transform(as_strings(X, categorical_columns(X))), dtype="float64")
