"""FLAML 2.7 (LightGBM, XGBoost, scikit-learn learners): ``AutoML.fit`` with ``time_budget``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Clock, args, estimator_scores, load, write_preds, write_result  # noqa: E402

METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def main() -> None:
    data, budget, seed, out = args()
    meta, train, test = load(data)
    import flaml
    from flaml import AutoML

    X, y = train.drop(columns=["target"]), train["target"]
    Xt = test.drop(columns=["target"])
    clock = Clock()
    automl = AutoML()
    automl.fit(X, y, task="regression" if meta["task"] == "regression" else "classification",
               metric=METRIC[meta["task"]], time_budget=budget, seed=seed, verbose=0,
               log_file_name=str(out / "flaml.log"))
    fit_s = clock.lap()
    scores, classes = estimator_scores(meta, automl, Xt)
    predict_s = clock.lap()
    write_preds(out, meta, scores, classes)
    write_result(out, system="flaml", version=flaml.__version__, fit_seconds=fit_s, predict_seconds=predict_s,
                 best=automl.best_estimator, best_config=automl.best_config,
                 best_cv_loss=automl.best_loss)


if __name__ == "__main__":
    main()
