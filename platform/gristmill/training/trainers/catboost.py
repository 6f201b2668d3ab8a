"""CatBoost: ordered target statistics for categoricals (strong on categorical-heavy tables)."""

from __future__ import annotations


from gristmill.training.trainers.base import (EARLY_STOPPING_ROUNDS, MAX_ROUNDS, Fitted, Task, Trainer,
                                              as_strings, categorical_columns, in_order,
                                              object_matrix)


class CatBoostTrainer(Trainer):
    name = "catboost"
    early_stopping = True
    defaults = {"learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0, "random_strength": 1.0}
    space = {"learning_rate": ("float_log", 0.02, 0.3), "depth": ("int", 4, 8),
             "l2_leaf_reg": ("float_log", 1.0, 30.0), "random_strength": ("float_log", 0.1, 10.0)}
    LOSS = {"binary": "Logloss", "multiclass": "MultiClass", "regression": "RMSE"}

    def _model(self, params: dict, task: Task, rounds: int | None):
        from catboost import CatBoostClassifier, CatBoostRegressor

        kind = CatBoostRegressor if task.kind == "regression" else CatBoostClassifier
        return kind(loss_function=self.LOSS[task.kind], iterations=rounds or MAX_ROUNDS,
                    thread_count=task.threads, random_seed=task.seed, verbose=False,
                    allow_writing_files=False, **params)

    def fit(self, params, task, X, y, weight=None, X_valid=None, y_valid=None, rounds=None):
        from catboost import Pool

        cats = categorical_columns(X)
        train = Pool(as_strings(X, cats), y, cat_features=cats, weight=weight)
        model = self._model(params, task, rounds)
        callbacks = None if task.stop is None else [_StopWhen(task)]
        if X_valid is not None:
            valid = Pool(as_strings(X_valid, cats), y_valid, cat_features=cats)
            model.fit(train, eval_set=valid, early_stopping_rounds=EARLY_STOPPING_ROUNDS, use_best_model=True,
                      callbacks=callbacks)
            return Fitted(model, (model.get_best_iteration() or 0) + 1, {"categories": cats})
        model.fit(train, callbacks=callbacks)
        return Fitted(model, model.tree_count_, {"categories": cats})

    def predict(self, fitted, task, X):
        import numpy as np

        model = fitted.native
        X = in_order(X, model.feature_names_)
        cats = categorical_columns(X)
        # an object array is about 3x faster to score than a DataFrame; it is read by position,
        # so only when the columns are the model's, in its order
        same = list(X.columns) == list(model.feature_names_ or [])
        data = object_matrix(X, cats) if same else as_strings(X, cats)
        if task.kind == "regression":
            return np.asarray(model.predict(data, thread_count=1))
        proba = np.asarray(model.predict_proba(data, thread_count=1))
        return proba[:, 1] if task.kind == "binary" else proba

    def save(self, fitted, folder):
        fitted.native.save_model(str(folder / "catboost.cbm"))
        return "catboost.cbm"

    def load(self, path):
        from catboost import CatBoost

        model = CatBoost()
        model.load_model(str(path))
        return Fitted(_Loaded(model))


class _StopWhen:
    """A CatBoost callback ending training once ``task.stop()`` (``use_best_model`` then keeps the
    best round so far)."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def after_iteration(self, info) -> bool:
        return info.iteration <= 1 or not self.task.should_stop()


class _Loaded:
    """A CatBoost model loaded from disk, answering like the fitted classifier or regressor."""

    def __init__(self, model) -> None:
        self.model = model

    @property
    def feature_names_(self):
        return self.model.feature_names_

    def save_model(self, path: str) -> None:
        self.model.save_model(path)

    def predict(self, data, thread_count=1):
        return self.model.predict(data, thread_count=thread_count)

    def predict_proba(self, data, thread_count=1):
        return self.model.predict(data, prediction_type="Probability", thread_count=thread_count)
