"""scikit-learn baselines: linear models (plain and over splines) and two tree ensembles, behind one
pipeline each.

Numbers are imputed (median, plus a missing-indicator), categories one-hot encoded (rare levels
grouped); the linear model also scales. ``linear_spline`` expands each number into a cubic B-spline
basis over its quantiles, so a regularised linear model fits a smooth curve per feature (additive,
no interactions). They rarely win alone but add diversity to an ensemble.
"""

from __future__ import annotations


from gristmill.training.trainers.base import Fitted, Task, Trainer, as_strings, categorical_columns


def _pipeline(estimator, X, scale: bool):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = categorical_columns(X)
    numbers = [c for c in X.columns if c not in cats]
    numeric = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
    if scale:
        numeric.append(StandardScaler())
    encode = ColumnTransformer(
        [("numbers", make_pipeline(*numeric), numbers),
         ("categories", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                      max_categories=30, sparse_output=False), cats)],
        remainder="drop")
    return make_pipeline(encode, estimator)


class _SklearnTrainer(Trainer):
    scale = False
    #: Trees grown per step when the fit may be stopped (forests only; None: one fit).
    grow_by: int | None = None

    def estimator(self, params: dict, task: Task):
        raise NotImplementedError

    def pipeline(self, params: dict, task: Task, X):
        """The encoding of ``X`` followed by :meth:`estimator` (unfitted)."""
        return _pipeline(self.estimator(params, task), X, self.scale)

    def fit(self, params, task, X, y, weight=None, X_valid=None, y_valid=None, rounds=None):
        cats = categorical_columns(X)
        model = self.pipeline(params, task, X)
        if self.grow_by is None or task.stop is None:
            fit_params = {f"{model.steps[-1][0]}__sample_weight": weight} if weight is not None else {}
            model.fit(as_strings(X, cats), y, **fit_params)
            return Fitted(model)
        # grow the forest a few trees at a time, so a stop keeps the trees grown so far
        forest, total = model.steps[-1][1], model.steps[-1][1].n_estimators
        encoded = model[:-1].fit_transform(as_strings(X, cats), y)
        forest.set_params(warm_start=True, n_estimators=min(self.grow_by, total))
        while True:
            forest.fit(encoded, y, sample_weight=weight)
            if forest.n_estimators >= total or task.should_stop():
                break
            forest.set_params(n_estimators=min(forest.n_estimators + self.grow_by, total))
        forest.set_params(warm_start=False)
        return Fitted(model)

    def predict(self, fitted, task, X):
        import numpy as np

        from gristmill.training.trainers.encoding import encode

        model = fitted.native
        data = encode(fitted, model[0], X)  # the ColumnTransformer, without pandas (encoding.py)
        estimator = model.steps[-1][1]
        if task.kind == "regression":
            return np.asarray(estimator.predict(data))
        proba = np.asarray(estimator.predict_proba(data))
        return proba[:, 1] if task.kind == "binary" else proba

    def save(self, fitted, folder):
        import joblib

        joblib.dump(fitted.native, folder / f"{self.name}.joblib")
        return f"{self.name}.joblib"

    def load(self, path):
        import joblib

        return Fitted(joblib.load(path))


class LinearTrainer(_SklearnTrainer):
    name = "linear"
    scale = True
    defaults = {"C": 1.0}
    space = {"C": ("float_log", 1e-3, 100.0)}

    def estimator(self, params, task):
        from sklearn.linear_model import LogisticRegression, Ridge

        if task.kind == "regression":
            return Ridge(alpha=1.0 / params["C"], random_state=task.seed)
        return LogisticRegression(C=params["C"], max_iter=500, random_state=task.seed)


class LinearSplineTrainer(LinearTrainer):
    """Logistic or ridge regression over spline features: each number imputed (median, plus a
    missing flag where it had gaps), mapped to its quantile in [0, 1] and expanded into a cubic
    B-spline basis with ``n_knots`` evenly spaced knots there (so knots sit at the number's
    quantiles, ties and constant columns included); categories one-hot as in ``linear``. On wide
    tables the knots shrink so the spline columns stay near :attr:`MAX_SPLINE_COLUMNS`.

    A separate family rather than an option of ``linear``: it costs several times more (columns x
    knots), and the search keeps a cheap plain linear member besides a curved one."""

    name = "linear_spline"
    defaults = {"C": 1.0, "n_knots": 5}
    space = {"C": ("float_log", 1e-3, 100.0), "n_knots": ("int", 3, 10)}
    DEGREE = 3
    MAX_SPLINE_COLUMNS = 2000

    def knots(self, params: dict, n_numbers: int) -> int:
        """Knots per number: ``n_knots``, fewer when the spline columns would pass the cap."""
        fit = self.MAX_SPLINE_COLUMNS // max(n_numbers, 1) - (self.DEGREE - 1)
        return max(2, min(int(params["n_knots"]), fit))

    def pipeline(self, params, task, X):
        import numpy as np
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import MissingIndicator, SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, SplineTransformer

        cats = categorical_columns(X)
        numbers = [c for c in X.columns if c not in cats]
        n_knots = self.knots(params, len(numbers))
        # knots fixed on [0, 1] (the quantiles' range) rather than read from the data: a constant
        # column would otherwise give coinciding knots
        grid = np.tile(np.linspace(0.0, 1.0, n_knots)[:, None], (1, max(len(numbers), 1)))
        splines = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            QuantileTransformer(n_quantiles=max(2, min(1000, len(X))), subsample=10**9, random_state=0),
            SplineTransformer(knots=grid, degree=self.DEGREE, extrapolation="constant"))
        encode = ColumnTransformer(
            [("numbers", splines, numbers),
             ("missing", MissingIndicator(features="missing-only", error_on_new=False), numbers),
             ("categories", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                          max_categories=30, sparse_output=False), cats)],
            remainder="drop")
        return make_pipeline(encode, self.estimator(params, task))

    def estimator(self, params, task):
        from sklearn.linear_model import LogisticRegression, Ridge

        if task.kind == "regression":
            return Ridge(alpha=1.0 / params["C"], random_state=task.seed)
        return LogisticRegression(C=params["C"], max_iter=1000, random_state=task.seed)


class RandomForestTrainer(_SklearnTrainer):
    name = "random_forest"
    defaults = {"min_samples_leaf": 2, "max_features": 0.5}
    space = {"min_samples_leaf": ("int_log", 1, 30), "max_features": ("float", 0.1, 1.0)}
    forest = "RandomForest"
    grow_by = 25

    def estimator(self, params, task):
        from sklearn import ensemble

        kind = getattr(ensemble, f"{self.forest}{'Regressor' if task.kind == 'regression' else 'Classifier'}")
        return kind(n_estimators=200, n_jobs=task.threads, random_state=task.seed, **params)


class ExtraTreesTrainer(RandomForestTrainer):
    name = "extra_trees"
    forest = "ExtraTrees"
