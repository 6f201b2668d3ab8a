"""LightGBM with its default settings: the baseline any AutoML system must not lose to.

Text columns become pandas categoricals (levels from the train split, unseen ones missing), as a
user handing the table to ``LGBMClassifier().fit`` would do; 100 rounds, no early stopping, no
tuning. Runs in the FLAML venv (which has LightGBM). The budget is not used.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Clock, args, estimator_scores, load, write_preds, write_result  # noqa: E402


def main() -> None:
    data, budget, seed, out = args()
    meta, train, test = load(data)
    import lightgbm
    import pandas as pd

    X, y = train.drop(columns=["target"]), train["target"]
    Xt = test.drop(columns=["target"])
    for col in X.columns:
        if not pd.api.types.is_numeric_dtype(X[col]):
            levels = pd.Index(X[col].dropna().unique())
            X[col] = pd.Categorical(X[col], categories=levels)
            Xt[col] = pd.Categorical(Xt[col], categories=levels)
    clock = Clock()
    kind = lightgbm.LGBMRegressor if meta["task"] == "regression" else lightgbm.LGBMClassifier
    model = kind(random_state=seed, verbose=-1, n_jobs=2)
    model.fit(X, y if meta["task"] != "binary" else y.astype(int))
    fit_s = clock.lap()
    scores, classes = estimator_scores(meta, model, Xt)
    predict_s = clock.lap()
    write_preds(out, meta, scores, classes)
    write_result(out, system="lightgbm", version=lightgbm.__version__, fit_seconds=fit_s,
                 predict_seconds=predict_s, best="LightGBM defaults")


if __name__ == "__main__":
    main()
