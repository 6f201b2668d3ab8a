"""AutoGluon-Tabular 1.6, ``presets=preset``, ``time_limit`` = the budget.

``autogluon_best_runner.py`` runs the same with ``presets="best_quality"`` (bagged, stacked)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Clock, args, load, write_preds, write_result  # noqa: E402

METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "root_mean_squared_error"}


def main(preset: str = "medium_quality", system: str = "autogluon") -> None:
    data, budget, seed, out = args()
    meta, train, test = load(data)
    import autogluon.tabular
    from autogluon.tabular import TabularPredictor

    Xt = test.drop(columns=["target"])
    clock = Clock()
    predictor = TabularPredictor(label="target", problem_type=meta["task"], eval_metric=METRIC[meta["task"]],
                                 path=str(out / "ag_models"), verbosity=1)
    predictor.fit(train, time_limit=budget, presets=preset,
                  ag_args_fit={"random_seed": seed})
    fit_s = clock.lap()
    if meta["task"] == "regression":
        scores, classes = predictor.predict(Xt).to_numpy(), None
    else:
        proba = predictor.predict_proba(Xt)
        classes = [str(c) for c in proba.columns]
        scores = proba[[c for c in proba.columns if str(c) == "1"][0]].to_numpy() \
            if meta["task"] == "binary" else proba.to_numpy()
    predict_s = clock.lap()
    write_preds(out, meta, scores, classes)
    board = predictor.leaderboard(silent=True)
    write_result(out, system=system, version=autogluon.tabular.__version__, fit_seconds=fit_s,
                 predict_seconds=predict_s, best=predictor.model_best, models=len(board), preset=preset,
                 leaderboard=board[["model", "score_val", "fit_time"]].head(8).to_dict("records"))


if __name__ == "__main__":
    main()
