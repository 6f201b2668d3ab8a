"""k-nearest neighbours on scaled numbers and one-hot categories, votes weighted by distance.

Numbers are imputed (median) and standardised, plus a missing-value flag per column that had gaps
(standard scaling beat quantile-normal scores here: log loss 0.076 against 0.176 on penguins, RMSE
0.072 against 0.092 on ames' log price, ROC AUC 0.722 against 0.705 on credit_data); categories are one-hot
encoded with at most :data:`MAX_LEVELS` columns each (rarer levels share one). The neighbours'
votes (or values) are weighted by inverse distance and by the rows' sample weights (class weights
included); class probabilities are smoothed towards the training prior by one pseudo-neighbour, so
a query on top of a training row is not certain (log loss stays finite).

The cost sits in the prediction (every query against every stored row): at most :data:`MAX_ROWS`
training rows are kept, a random sample past that, logged with its count and kept in the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gristmill.training.trainers.base import Fitted, Task, Trainer, as_strings, categorical_columns
from gristmill.training.trainers.encoding import encode

log = logging.getLogger(__name__)

#: Training rows kept (a random sample past it): 20,000 rows x 5,000 queries x 50 columns score in
#: about 2 s on one core.
MAX_ROWS = 20_000
#: One-hot columns per categorical feature (the rest of the levels share one).
MAX_LEVELS = 10
#: Queries scored at once (bounds the neighbour matrices' memory).
CHUNK = 4096


@dataclass
class Neighbours:
    """A fitted k-NN model: the encoder, the index of the stored rows and their targets."""

    encoder: Any
    index: Any  # sklearn NearestNeighbors
    y: Any
    weight: Any
    prior: Any  # class frequencies (classification), None for regression
    n_neighbors: int
    distance: bool
    rows_given: int
    rows_kept: int


def _encoder(X):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = categorical_columns(X)
    numbers = [c for c in X.columns if c not in cats]
    return ColumnTransformer(
        [("numbers", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
          numbers),
         ("missing", MissingIndicator(features="missing-only", error_on_new=False), numbers),
         ("categories", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_LEVELS,
                                      sparse_output=False), cats)],
        remainder="drop")


class KNNTrainer(Trainer):
    name = "knn"
    defaults = {"n_neighbors": 15, "weights": "distance"}
    space = {"n_neighbors": ("int_log", 3, 100), "weights": ("choice", ["distance", "uniform"])}

    def fit(self, params, task, X, y, weight=None, X_valid=None, y_valid=None, rounds=None):
        import numpy as np
        from sklearn.neighbors import NearestNeighbors

        y = np.asarray(y)
        weight = np.ones(len(y)) if weight is None else np.asarray(weight, dtype="float64")
        given = len(X)
        if given > MAX_ROWS:
            keep = np.sort(np.random.default_rng(task.seed).choice(given, MAX_ROWS, replace=False))
            X, y, weight = X.iloc[keep], y[keep], weight[keep]
            log.info("knn: kept a random %d of %d training rows (scoring cost grows with the rows kept)",
                     MAX_ROWS, given)
        cats = categorical_columns(X)
        encoder = _encoder(X)
        Z = encoder.fit_transform(as_strings(X, cats)).astype("float32")
        k = max(1, min(int(params["n_neighbors"]), len(Z)))
        index = NearestNeighbors(n_neighbors=k, n_jobs=task.threads).fit(Z)
        prior = None
        if task.kind != "regression":
            n_classes = task.n_classes or int(y.max()) + 1
            prior = np.bincount(y.astype(int), weights=weight, minlength=n_classes)
            prior = prior / prior.sum()
        model = Neighbours(encoder, index, y, weight, prior, k, params["weights"] == "distance", given, len(Z))
        return Fitted(model, extra={"rows_given": given, "rows_kept": len(Z)})

    def predict(self, fitted, task, X):
        import numpy as np

        model: Neighbours = fitted.native
        Z = encode(fitted, model.encoder, X).astype("float32")  # without pandas (encoding.py)
        out = []
        for start in range(0, len(Z), CHUNK):
            dist, idx = model.index.kneighbors(Z[start:start + CHUNK])
            votes = model.weight[idx] / (dist + 1e-6) if model.distance else model.weight[idx]
            if model.prior is None:
                out.append((votes * model.y[idx]).sum(axis=1) / np.maximum(votes.sum(axis=1), 1e-12))
                continue
            proba = np.zeros((len(idx), len(model.prior)))
            labels = model.y[idx].astype(int)
            for j in range(idx.shape[1]):
                np.add.at(proba, (np.arange(len(idx)), labels[:, j]), votes[:, j])
            proba /= np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
            out.append((proba * model.n_neighbors + model.prior) / (model.n_neighbors + 1))
        shape = (0, len(model.prior)) if model.prior is not None else (0,)
        scores = np.concatenate(out) if out else np.zeros(shape)
        return scores[:, 1] if task.kind == "binary" else scores

    def save(self, fitted, folder):
        import joblib

        joblib.dump(fitted.native, folder / "knn.joblib")
        return "knn.joblib"

    def load(self, path):
        import joblib

        model = joblib.load(path)
        return Fitted(model, extra={"rows_given": model.rows_given, "rows_kept": model.rows_kept})
