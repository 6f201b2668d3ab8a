"""LightGBM: native categoricals (frequency ranks past ``MAX_NATIVE_LEVELS`` levels), early stopping,
fast. Search space after FLAML's and AutoGluon's."""

from __future__ import annotations


from gristmill.training.trainers.base import (EARLY_STOPPING_ROUNDS, MAX_ROUNDS, Fitted, Task, Trainer, as_ranks,
                                              categorical_columns, in_order, many_levels)


class LightGBMTrainer(Trainer):
    name = "lightgbm"
    early_stopping = True
    defaults = {"learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20, "feature_fraction": 0.9,
                "bagging_fraction": 1.0, "lambda_l1": 1e-8, "lambda_l2": 1e-8}
    space = {"learning_rate": ("float_log", 0.01, 0.3), "num_leaves": ("int_log", 4, 256),
             "min_child_samples": ("int_log", 5, 200), "feature_fraction": ("float", 0.4, 1.0),
             "bagging_fraction": ("float", 0.5, 1.0), "lambda_l1": ("float_log", 1e-8, 10.0),
             "lambda_l2": ("float_log", 1e-8, 10.0)}
    OBJECTIVE = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}

    def _params(self, params: dict, task: Task) -> dict:
        out = {"objective": self.OBJECTIVE[task.kind], "verbosity": -1, "num_threads": task.threads,
               "seed": task.seed, "deterministic": True, "force_col_wise": True, "bagging_freq": 1, **params}
        if task.kind == "multiclass":
            out["num_class"] = task.n_classes
        return out

    def fit(self, params, task, X, y, weight=None, X_valid=None, y_valid=None, rounds=None):
        import lightgbm as lgb

        ranks = many_levels(X)
        train = lgb.Dataset(as_ranks(X, ranks), y, weight=weight, free_raw_data=False)
        valid, callbacks = [], [] if task.stop is None else [_stop_when(task)]
        if X_valid is not None:
            valid = [lgb.Dataset(as_ranks(X_valid, ranks), y_valid, reference=train)]
            callbacks.append(lgb.early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False))
        booster = lgb.train(self._params(params, task), train, num_boost_round=rounds or MAX_ROUNDS,
                            valid_sets=valid, callbacks=callbacks)
        return Fitted(booster, booster.best_iteration or booster.current_iteration())

    def predict(self, fitted, task, X):
        import numpy as np

        booster = fitted.native
        X = in_order(X, booster.feature_name())
        native = len(getattr(booster, "pandas_categorical", None) or [])
        categorical = categorical_columns(X)
        if native != len(categorical):  # not a model from before ranks: rank as in fit
            X = as_ranks(X, many_levels(X))
        elif not categorical and list(X.columns) == booster.feature_name():
            X = X.to_numpy(dtype="float64")  # numbers only, the training columns in order: no pandas pass
        return np.asarray(booster.predict(X, num_threads=1))

    def save(self, fitted, folder):
        fitted.native.save_model(str(folder / "lightgbm.txt"))
        return "lightgbm.txt"

    def load(self, path):
        import lightgbm as lgb

        return Fitted(lgb.Booster(model_file=str(path)))

    def importance(self, fitted) -> dict[str, float]:
        booster = fitted.native
        return dict(zip(booster.feature_name(), booster.feature_importance("gain").tolist()))


def _stop_when(task: Task):
    """A LightGBM callback ending training once ``task.stop()``: the model keeps its best round so
    far on the validation part (the last round without one)."""
    import lightgbm as lgb

    best = {}

    def callback(env) -> None:
        results = env.evaluation_result_list or []
        if results:  # (dataset, metric, value, higher is better)
            _, _, value, higher = results[0][:4]
            if "value" not in best or (value > best["value"] if higher else value < best["value"]):
                best.update(value=value, iteration=env.iteration, results=results)
        if env.iteration > 0 and task.should_stop():
            raise lgb.callback.EarlyStopException(best.get("iteration", env.iteration),
                                                  best.get("results", results))

    callback.order = 40  # after early stopping (order 30)
    return callback
