"""What every runner shares: reading the split, writing predictions and the result file.

A runner is started as ``python <system>.py DATA_DIR BUDGET SEED OUT_DIR`` by ``run.py`` in the
system's own venv. It reads ``DATA_DIR/{train,test}.parquet`` and ``meta.json``, trains on the
train split within ``BUDGET`` seconds, and writes ``OUT_DIR/preds.parquet`` (binary: ``p1`` =
P(target == 1); multiclass: one ``p_<class>`` column per class; regression: ``pred``) and
``OUT_DIR/result.json`` (fit and predict seconds, what the system chose). Scoring happens in
``run.py``, once, for every system. This file only uses pandas and the standard library.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def args():
    data, budget, seed, out = sys.argv[1:5]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return Path(data), int(budget), int(seed), out


def load(data: Path):
    import pandas as pd

    meta = json.loads((data / "meta.json").read_text())
    train = pd.read_parquet(data / "train.parquet")
    test = pd.read_parquet(data / "test.parquet")
    for frame in (train, test):  # the same dtypes in every venv, whatever its pandas' string default
        for col in frame.columns:
            if col != "target" and not pd.api.types.is_numeric_dtype(frame[col]):
                frame[col] = frame[col].astype("object").where(frame[col].notna(), None)
    if meta["task"] == "multiclass":
        train["target"] = train["target"].astype(str).astype("object")
    return meta, train, test


def write_preds(out: Path, meta: dict, scores, classes=None) -> None:
    """``scores``: P(1) (binary), a rows x classes matrix in ``classes`` order, or values."""
    import numpy as np
    import pandas as pd

    scores = np.asarray(scores, dtype="float64")
    if meta["task"] == "binary":
        frame = pd.DataFrame({"p1": scores.reshape(-1)})
    elif meta["task"] == "multiclass":
        frame = pd.DataFrame(scores, columns=[f"p_{c}" for c in classes])
    else:
        frame = pd.DataFrame({"pred": scores.reshape(-1)})
    frame.to_parquet(out / "preds.parquet", index=False)


def estimator_scores(meta: dict, model, X):
    """Scores of a scikit-learn-style estimator (``predict`` / ``predict_proba`` / ``classes_``) in
    :func:`write_preds`' shape, and the class order (None for regression)."""
    if meta["task"] == "regression":
        return model.predict(X), None
    proba = model.predict_proba(X)
    classes = [str(c) for c in model.classes_]
    return (proba[:, classes.index("1")] if meta["task"] == "binary" else proba), classes


def write_result(out: Path, **fields) -> None:
    (out / "result.json").write_text(json.dumps(fields, indent=2, default=str))


class Clock:
    def __init__(self):
        self.start = time.monotonic()

    def lap(self) -> float:
        now = time.monotonic()
        seconds, self.start = now - self.start, now
        return round(seconds, 2)
