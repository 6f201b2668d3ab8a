"""XGBoost (the CPU build): histogram trees with native categorical support (frequency ranks past
``MAX_NATIVE_LEVELS`` levels), early stopping."""

from __future__ import annotations


from gristmill.training.trainers.base import (EARLY_STOPPING_ROUNDS, MAX_ROUNDS, Fitted, Task, Trainer, as_ranks,
                                              categorical_columns, in_order, many_levels)


class XGBoostTrainer(Trainer):
    name = "xgboost"
    early_stopping = True
    defaults = {"eta": 0.05, "max_depth": 6, "min_child_weight": 1.0, "subsample": 0.9,
                "colsample_bytree": 0.9, "lambda": 1.0, "alpha": 1e-8}
    space = {"eta": ("float_log", 0.01, 0.3), "max_depth": ("int", 3, 10),
             "min_child_weight": ("float_log", 0.5, 20.0), "subsample": ("float", 0.5, 1.0),
             "colsample_bytree": ("float", 0.4, 1.0), "lambda": ("float_log", 1e-3, 10.0),
             "alpha": ("float_log", 1e-8, 10.0)}
    OBJECTIVE = {"binary": "binary:logistic", "multiclass": "multi:softprob", "regression": "reg:squarederror"}

    def _params(self, params: dict, task: Task) -> dict:
        out = {"objective": self.OBJECTIVE[task.kind], "tree_method": "hist", "nthread": task.threads,
               "seed": task.seed, "max_cat_to_onehot": 4, "verbosity": 0, **params}
        if task.kind == "multiclass":
            out["num_class"] = task.n_classes
        return out

    def fit(self, params, task, X, y, weight=None, X_valid=None, y_valid=None, rounds=None):
        import xgboost as xgb

        ranks = many_levels(X)
        train = xgb.DMatrix(as_ranks(X, ranks), y, weight=weight, enable_categorical=True)
        evals, stopping = [], None
        if X_valid is not None:
            evals = [(xgb.DMatrix(as_ranks(X_valid, ranks), y_valid, enable_categorical=True), "valid")]
            stopping = EARLY_STOPPING_ROUNDS
        callbacks = [] if task.stop is None else [_stop_when(task)]
        booster = xgb.train(self._params(params, task), train, num_boost_round=rounds or MAX_ROUNDS,
                            evals=evals, early_stopping_rounds=stopping, verbose_eval=False,
                            callbacks=callbacks)
        best = getattr(booster, "best_iteration", None)
        return Fitted(booster, (best + 1) if best is not None else booster.num_boosted_rounds())

    def predict(self, fitted, task, X):
        import numpy as np
        import xgboost as xgb

        booster = fitted.native
        booster.set_param({"nthread": 1})
        X = in_order(X, booster.feature_names)
        kinds = dict(zip(booster.feature_names or [], booster.feature_types or []))
        X = as_ranks(X, [c for c in categorical_columns(X) if kinds.get(c, "c") != "c"])
        return np.asarray(booster.predict(xgb.DMatrix(X, enable_categorical=True)))

    def save(self, fitted, folder):
        fitted.native.save_model(str(folder / "xgboost.json"))
        return "xgboost.json"

    def load(self, path):
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        return Fitted(booster)


def _stop_when(task: Task):
    """An XGBoost callback ending training once ``task.stop()`` (early stopping, when on, has kept
    the best round so far in the booster's ``best_iteration``)."""
    import xgboost as xgb

    class StopWhen(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            return epoch > 0 and task.should_stop()

    return StopWhen()
