"""Columns that identify rows instead of describing them, and single features that look leaked.

- **Identifier-like columns** are kept out of training by default (``training.keep_identifiers``
  names the ones to keep): a column is identifier-like when it is (nearly) unique per entity -- one
  value per entity, different values for different entities -- holds whole numbers or codes, and
  either is named like an identifier (``*_id``, ``*_number``, ``*_no``, ...) or rises (or falls) with
  time. A customer number handed out in order encodes when the customer arrived: trained on, it
  was the top feature and gave a holdout ROC AUC of 0.977 against 0.73 without it.
- **Likely leaks**: every remaining feature is scored alone (a small decision tree on that one
  column, fitted on the training rows, scored on the holdout: ROC AUC, accuracy or R^2 by task); one
  whose own score is near perfect (:data:`LEAK_SCORE`) is flagged in the CLI, MLflow and the promotion
  gate's reason. It is flagged, not dropped: a near-perfect single feature can be real.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

ID_NAME = re.compile(r"(^|_)(id|ids|uuid|guid|number|no|nr|num)$", re.IGNORECASE)
#: share of entities that must have a value of their own (distinct values / entities)
UNIQUE_SHARE = 0.9
#: at most this many distinct values per entity on average (an id is constant per entity)
VALUES_PER_ENTITY = 1.1
#: |Spearman correlation| with the label's time above which a column "rises with time"
MONOTONIC = 0.9
#: per task, the metric a single feature is scored with and the score that makes it a likely leak
LEAK_SCORE = {"binary": ("roc_auc", 0.97), "multiclass": ("accuracy", 0.98), "regression": ("r2", 0.97)}
TOO_FEW_ENTITIES = 20


@dataclass
class Notice:
    kind: str  # "identifier" (kept out) | "leak" (flagged) | "date" (training.dates)
    column: str
    why: str
    score: float | None = None

    def as_dict(self) -> dict:
        return {**asdict(self), "message": self.line()}

    def line(self) -> str:
        if self.kind == "date":  # training.dates: values read as missing, a date left out
            return self.why
        if self.kind == "identifier":
            return (f"kept out identifier-like column {self.column}: {self.why} "
                    f"(training.keep_identifiers: [{_bare(self.column)}] keeps it)")
        return f"likely leak: {self.column} alone scores {self.score:.4f} on the holdout ({self.why})"


def _bare(column: str) -> str:
    return column.rsplit("__", 1)[-1]


def identifier_columns(frame, features: list[str], key: str, time_column: str,
                       keep: list[str] | None = None, whole: list[str] | None = None) -> list[Notice]:
    """The identifier-like columns of ``features`` (see the module docstring), but those ``keep``
    names (``customer_number`` matches ``customers__customer_number``). ``whole``, when known (the
    feature store's integer columns), limits the numeric candidates: a date arrives as whole days
    since 1970 in a float column and rises with time, but it is a measurement, not an identifier."""
    import numpy as np
    import pandas as pd

    keep = keep or []
    entities = frame[key].nunique()
    if entities < TOO_FEW_ENTITIES:
        return []
    times = pd.to_datetime(frame[time_column], utc=True).astype("int64")
    found = []
    for col in features:
        if col in keep or _bare(col) in keep:
            continue
        series = frame[col]
        values = series.dropna()
        if values.empty:
            continue
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if numeric:
            if whole is not None and col not in whole:
                continue
            if not np.all(np.isclose(values.astype("float64") % 1, 0)):
                continue  # measurements, not numbers handed out
        elif not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
            continue
        pairs = frame.loc[series.notna(), [key, col]].drop_duplicates()
        share = pairs[col].nunique() / entities
        per_entity = len(pairs) / max(pairs[key].nunique(), 1)
        if share < UNIQUE_SHARE or per_entity > VALUES_PER_ENTITY:
            continue
        reasons = [f"{share:.0%} of entities have a value of their own"]
        named = bool(ID_NAME.search(_bare(col)))
        if named:
            reasons.append("named like an identifier")
        rho = None
        if numeric:
            ok = series.notna().to_numpy()
            rho = pd.Series(values.astype("float64").to_numpy()).corr(
                pd.Series(times.to_numpy()[ok]), method="spearman")
        if rho is not None and abs(rho) >= MONOTONIC:
            reasons.append(f"{'rises' if rho > 0 else 'falls'} with time (Spearman {rho:+.2f})")
        if len(reasons) > 1:
            found.append(Notice("identifier", col, "; ".join(reasons)))
    return found


def likely_leaks(train_df, holdout_df, features: list[str], numeric: list[str], target_train,
                 target_holdout, task: str) -> list[Notice]:
    """Features whose own holdout score is near perfect: each scored alone by a small tree."""
    import numpy as np
    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    from gristmill.training.task import get_metric

    name, threshold = LEAK_SCORE[task]
    metric = get_metric(name, task)
    if len(np.unique(target_train)) < 2 or len(holdout_df) < 10:
        return []
    found = []
    for col in features:
        if col in numeric:
            x_tr = pd.to_numeric(train_df[col], errors="coerce").fillna(-1e18).to_numpy(dtype="float64")
            x_ho = pd.to_numeric(holdout_df[col], errors="coerce").fillna(-1e18).to_numpy(dtype="float64")
        else:  # the level's mean target on the training rows (unseen levels: the overall mean)
            y = pd.Series(np.asarray(target_train, dtype="float64"))
            level = train_df[col].astype("string").fillna("\0").reset_index(drop=True)
            means = y.groupby(level).mean()
            x_tr = level.map(means).to_numpy(dtype="float64")
            x_ho = (holdout_df[col].astype("string").fillna("\0").map(means).fillna(y.mean())
                    .to_numpy(dtype="float64"))
        if task == "regression":
            tree = DecisionTreeRegressor(max_leaf_nodes=32, min_samples_leaf=5, random_state=0)
            tree.fit(x_tr.reshape(-1, 1), target_train)
            scores = tree.predict(x_ho.reshape(-1, 1))
        else:
            tree = DecisionTreeClassifier(max_leaf_nodes=32, min_samples_leaf=5, random_state=0)
            tree.fit(x_tr.reshape(-1, 1), target_train)
            proba = np.zeros((len(x_ho), int(max(np.max(target_train), np.max(target_holdout))) + 1))
            proba[:, tree.classes_.astype(int)] = tree.predict_proba(x_ho.reshape(-1, 1))
            scores = proba[:, 1] if task == "binary" else proba
        try:
            score = float(metric.score(target_holdout, scores))
        except ValueError:  # a holdout with one class cannot be scored
            continue
        if score >= threshold:
            found.append(Notice("leak", col, f"{metric.name} >= {threshold:g} from this one column", score))
    return sorted(found, key=lambda n: -(n.score or 0))
