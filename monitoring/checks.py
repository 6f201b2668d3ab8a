"""The checks of a monitoring run, vectorised, against reference statistics computed once.

:func:`reference_stats` summarises a reference frame once per model version (quantile sketch,
standard deviation, range, category counts, missing share; the raw values when a column has at
most 1,000 of them). :func:`drift` then tests a current frame against it with the tests and
thresholds Evidently 0.7 picks by default, so the verdicts agree with Evidently's:

- more than 1,000 reference values: numerical columns with more than 5 distinct values (reference
  and current together) -> Wasserstein distance normed by the reference's standard deviation;
  other numerical and all categorical columns -> Jensen-Shannon distance of the value shares;
  drift when the distance is at least 0.1;
- at most 1,000 reference values: Evidently's own p-value tests (K-S, chi-square, Z) on the raw
  values kept in the statistics; drift when p is below 0.05.

Wasserstein distance is computed from quantile functions, W1 = integral over u of
|Q_ref(u) - Q_cur(u)|, with the reference's quantiles at :data:`QUANTILES` midpoints.

Large windows are sampled (:func:`sample_rows`): with n sampled rows the sample's distribution
function is within eps = sqrt(ln(2/alpha) / (2n)) of the whole window's everywhere, with
probability 1 - alpha (Dvoretzky-Kiefer-Wolfowitz); each category share is then within 2*eps.
:func:`dkw_epsilon` gives eps; every run records it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

QUANTILES = 2000
SMALL = 1000  # Evidently switches from p-values to distances above this many reference values
MAX_CATEGORIES = 10_000
DISTANCE_THRESHOLD = 0.1
P_VALUE_THRESHOLD = 0.05
MIN_ROWS_TO_JUDGE = 30  # fewer current rows: drift is "too few rows to judge" and no alert fires
VERDICT_ALPHA = 0.05  # confidence 1 - alpha of the window's own error bound, stated in every verdict


def dkw_epsilon(n: int, alpha: float = 0.01) -> float:
    """Bound on sup |F_sample - F_window| holding with probability ``1 - alpha`` (DKW)."""
    return math.sqrt(math.log(2 / alpha) / (2 * max(n, 1)))


def non_finite_count(series: "pd.Series") -> int:
    """How many values of a numeric column are +inf or -inf (0 for other columns)."""
    import numpy as np
    from pandas.api import types as ptypes

    if not ptypes.is_numeric_dtype(series.dtype) or ptypes.is_bool_dtype(series.dtype):
        return 0
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return int(np.isinf(values).sum())


def has_values(series: "pd.Series") -> bool:
    """Whether ``series`` has at least one value a drift test can use (finite, for numbers)."""
    from pandas.api import types as ptypes

    if ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype):
        return bool(_finite(series).size)
    return bool(series.notna().any())


def verdict(column_results: list[dict], threshold: float, rows: int, reference_rows: int,
            not_compared: list[dict] | None = None, min_rows: int = MIN_ROWS_TO_JUDGE) -> dict[str, Any]:
    """The one dataset-drift verdict of a run, from its per-column results; every output shows it.

    ``column_results`` are the compared columns only (values on both sides); ``not_compared`` lists
    the others with their reason (they are not in the share's denominator, as in Evidently's report).
    The verdict states the sample size and its uncertainty: with ``rows`` current rows, the window's
    distribution function is within ``epsilon`` = sqrt(ln(2/alpha) / 2n) of the distribution it was
    drawn from, with probability 1 - alpha (DKW, alpha = 0.05). Below ``min_rows`` rows the verdict
    is "too few rows to judge": ``dataset_drift`` is None and no drift alert fires.
    """
    drifted = [c["column"] for c in column_results if c["drifted"]]
    compared = len(column_results)
    share = len(drifted) / compared if compared else 0.0
    eps = dkw_epsilon(rows, VERDICT_ALPHA) if rows else None
    judged = rows >= min_rows and compared > 0
    dataset_drift = (share >= threshold) if judged else None
    size = f"{rows} rows (\u00b1{eps:.2f} at 95%)" if eps is not None else "0 rows"
    counted = f"{len(drifted)}/{compared} columns drifted (share {share:.2f}"
    if not judged:
        why = (f"{rows} < {min_rows} rows" if rows < min_rows else "no column has values on both sides")
        text = f"too few rows to judge ({why}): {counted}, threshold {threshold:.2f}); {size}"
    else:
        op = ">=" if dataset_drift else "<"
        text = (f"{'DATASET DRIFT' if dataset_drift else 'no dataset drift'}: {counted} {op} "
                f"{threshold:.2f}); {size}")
    skipped = not_compared or []
    if skipped:
        text += f"; {len(skipped)} columns not compared (no values on one side)"
    return {"text": text, "judged": judged, "dataset_drift": dataset_drift, "drift_share": share,
            "threshold": threshold, "compared_columns": compared, "drifted_columns": drifted,
            "not_compared": skipped, "rows": rows, "reference_rows": reference_rows,
            "min_rows": min_rows, "epsilon": eps, "alpha": VERDICT_ALPHA,
            "epsilon_meaning": "sup |F_window - F_population| <= epsilon with probability 1 - alpha "
                               "(DKW); each category share within 2*epsilon"}


def column_kind(series: "pd.Series") -> str | None:
    from pandas.api import types as ptypes

    import pandas as pd

    dtype = series.dtype
    if (ptypes.is_bool_dtype(dtype) or ptypes.is_object_dtype(dtype) or ptypes.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)):
        return "categorical"
    if ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype):
        return "numerical"
    return None


def _finite(series: "pd.Series"):
    """Numeric values without NaN and infinities, as float64."""
    import numpy as np

    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return values[np.isfinite(values)]


def _labels(series: "pd.Series") -> "pd.Series":
    """Category values as text, missing dropped (the same on both sides)."""
    return series.dropna().astype(str)


def column_stats(series: "pd.Series", kind: str) -> dict[str, Any]:
    import numpy as np

    rows = int(len(series))
    missing = int(series.isna().sum())
    out: dict[str, Any] = {"kind": kind, "rows": rows,
                           "missing_share": missing / rows if rows else 0.0}
    if kind == "numerical":
        values = _finite(series)
        out["n"] = int(values.size)
        if values.size == 0:
            return out
        grid = (np.arange(QUANTILES) + 0.5) / QUANTILES
        out.update(quantiles=np.quantile(values, grid).tolist(), std=float(np.std(values)),
                   min=float(values.min()), max=float(values.max()))
        uniques, counts = np.unique(values, return_counts=True) if values.size <= 5_000_000 else (None, None)
        if uniques is None:
            uniques = np.unique(values[: 1_000_000])
        out["nunique"] = int(min(len(uniques), 21))
        if len(uniques) <= 20 and counts is not None:
            out["counts"] = [[float(u), int(c)] for u, c in zip(uniques, counts)]
    else:
        labels = _labels(series)
        out["n"] = int(labels.size)
        counts = labels.value_counts()
        out["nunique"] = int(counts.size)
        if counts.size <= MAX_CATEGORIES:
            out["counts"] = [[str(k), int(v)] for k, v in counts.items()]
        values = labels
    if out["n"] <= SMALL:  # small: keep the values, Evidently's p-value tests need them
        out["values"] = values.tolist() if kind == "categorical" else [float(v) for v in values]
    return out


def reference_stats(frame: "pd.DataFrame", kinds: dict[str, str]) -> dict[str, Any]:
    """Statistics of every column of ``kinds`` in ``frame`` (JSON-able)."""
    return {"rows": int(len(frame)), "columns": {c: column_stats(frame[c], k) for c, k in kinds.items()}}


def sample_rows(frame: "pd.DataFrame", n: int, seed: int = 0) -> "pd.DataFrame":
    """A uniform sample of at most ``n`` rows (the frame itself when it is small enough)."""
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed)


def _js(ref_counts: dict, cur_counts: dict, ref_n: int, cur_n: int) -> float:
    import numpy as np
    from scipy.spatial import distance

    keys = list(dict.fromkeys([*ref_counts, *cur_counts]))
    p = np.array([ref_counts.get(k, 0) / ref_n for k in keys])
    q = np.array([cur_counts.get(k, 0) / cur_n for k in keys])
    return float(distance.jensenshannon(p, q))


def column_drift(stats: dict[str, Any], current: "pd.Series", threshold: float | None = None) -> dict:
    """Drift of one current column against its reference statistics (Evidently's default test)."""
    import numpy as np

    kind = stats["kind"]
    if kind == "numerical":
        cur = _finite(current)
    else:
        cur = _labels(current)
    if stats.get("n", 0) == 0 or len(cur) == 0:
        return {"method": "none", "score": None, "threshold": None, "drifted": False,
                "note": "no values on one side"}
    if "values" in stats:  # small reference: Evidently's own test on the raw values
        import pandas as pd
        from evidently.legacy.calculations.stattests.registry import get_stattest
        from evidently.legacy.core import ColumnType

        ref = pd.Series(stats["values"])
        cur_s = pd.Series(np.asarray(cur)) if kind == "numerical" else pd.Series(list(cur))
        ctype = ColumnType.Numerical if kind == "numerical" else ColumnType.Categorical
        test = get_stattest(ref, cur_s, ctype, None)
        result = test(ref, cur_s, ctype, threshold)
        return {"method": test.display_name, "score": float(result.drift_score),
                "threshold": float(result.actual_threshold), "drifted": bool(result.drifted)}
    limit = DISTANCE_THRESHOLD if threshold is None else threshold
    if kind == "numerical":
        ref_counts = {v: c for v, c in stats.get("counts", [])}
        few = False
        if ref_counts:
            cur_unique, cur_counts = np.unique(cur, return_counts=True)
            few = len(set(ref_counts) | set(cur_unique.tolist())) <= 5
        if few:
            score = _js(ref_counts, dict(zip(cur_unique.tolist(), cur_counts.tolist())), stats["n"], len(cur))
            method = "Jensen-Shannon distance"
        else:
            grid = (np.arange(QUANTILES) + 0.5) / QUANTILES
            q_cur = np.quantile(cur, grid)
            w1 = float(np.mean(np.abs(np.asarray(stats["quantiles"]) - q_cur)))
            score = w1 / max(stats["std"], 0.001)
            method = "Wasserstein distance (normed)"
    else:
        if "counts" not in stats:
            return {"method": "none", "score": None, "threshold": None, "drifted": False,
                    "note": f"more than {MAX_CATEGORIES} categories"}
        score = _js(dict(stats["counts"]), cur.value_counts().to_dict(), stats["n"], len(cur))
        method = "Jensen-Shannon distance"
    return {"method": method, "score": score, "threshold": limit, "drifted": bool(score >= limit)}


def drift(ref: dict[str, Any], current: "pd.DataFrame", columns: list[str]) -> list[dict]:
    """Per-column drift of ``current`` (already sampled) against reference statistics ``ref``."""
    out = []
    for col in columns:
        result = column_drift(ref["columns"][col], current[col])
        out.append({"column": col, "column_type": ref["columns"][col]["kind"], **result})
    return out


def quality(ref: dict[str, Any], current: "pd.DataFrame", columns: list[str]) -> list[dict]:
    """Data quality of every current row: missing share (and its rise over the reference), share of
    categories never seen in the reference, share of numbers outside the reference's range.

    NaN is missing; +inf and -inf are values outside every range: they count in
    ``out_of_range_share`` (of the non-missing values) and in ``non_finite``."""
    import numpy as np

    out = []
    n = len(current)
    for col in columns:
        stats = ref["columns"][col]
        series = current[col]
        missing = float(series.isna().mean()) if n else 0.0
        row: dict[str, Any] = {"column": col, "missing_share": missing,
                               "reference_missing_share": stats["missing_share"],
                               "missing_increase": missing - stats["missing_share"],
                               "new_category_share": None, "new_categories": [],
                               "out_of_range_share": None, "non_finite": 0}
        if stats["kind"] == "categorical" and "counts" in stats:
            labels = _labels(series)
            if len(labels):
                known = {k for k, _ in stats["counts"]}
                new = ~labels.isin(known)
                row["new_category_share"] = float(new.mean())
                row["new_categories"] = sorted(labels[new].unique().tolist())[:10]
        elif stats["kind"] == "numerical" and "min" in stats:
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            values = values[~np.isnan(values)]  # +-inf stay: a value, outside every finite range
            if values.size:
                outside = (values < stats["min"]) | (values > stats["max"])
                row["out_of_range_share"] = float(np.mean(outside))
                row["non_finite"] = int(np.isinf(values).sum())
        out.append(row)
    return out


def labelled_quality(task: str, frame: "pd.DataFrame") -> dict[str, float]:
    """Model quality on predictions joined with their late labels.

    ``frame`` has ``prediction`` (text), ``target`` (text for classifiers), and for binary tasks
    ``probability`` (of the positive class) and ``positive`` (its label).
    """
    import numpy as np

    out: dict[str, float] = {}
    if frame.empty:
        return out
    if task == "regression":
        pred = frame["prediction"].astype(float).to_numpy()
        true = frame["target"].astype(float).to_numpy()
        err = pred - true
        out["rmse"] = float(np.sqrt(np.mean(err ** 2)))
        out["mae"] = float(np.mean(np.abs(err)))
        return out
    out["accuracy"] = float((frame["prediction"].astype(str) == frame["target"].astype(str)).mean())
    if task == "binary" and "probability" in frame and frame["probability"].notna().all():
        from sklearn.metrics import roc_auc_score

        truth = (frame["target"].astype(str) == frame["positive"].astype(str)).to_numpy()
        if 0 < truth.sum() < len(truth):
            out["roc_auc"] = float(roc_auc_score(truth, frame["probability"].to_numpy(dtype=float)))
    return out


GREATER_IS_BETTER = {"roc_auc": True, "accuracy": True, "f1": True, "average_precision": True,
                     "r2": True, "rmse": False, "mae": False, "mape": False, "log_loss": False}
