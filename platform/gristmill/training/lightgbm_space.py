"""LightGBM's known-good defaults and Optuna search space, kept as plain data."""

DEFAULTS = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 1.0,
    "lambda_l1": 1e-8,
    "lambda_l2": 1e-8,
}

# name: (kind, low, high); "log" kinds sample on a log scale.
SEARCH_SPACE = {
    "learning_rate": ("float_log", 0.01, 0.3),
    "num_leaves": ("int_log", 4, 256),
    "min_child_samples": ("int_log", 5, 200),
    "feature_fraction": ("float", 0.4, 1.0),
    "bagging_fraction": ("float", 0.5, 1.0),
    "lambda_l1": ("float_log", 1e-8, 10.0),
    "lambda_l2": ("float_log", 1e-8, 10.0),
}

FIXED = {"verbosity": -1, "bagging_freq": 1, "num_threads": 2, "deterministic": True,
         "force_col_wise": True}
MAX_ROUNDS = 3000
EARLY_STOPPING_ROUNDS = 50
OBJECTIVE = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}

# Early stopping always watches the task's proper loss (so probabilities stay calibrated); pruning
# watches LightGBM's twin of the selection metric when one exists in the same direction.
LOSS = {"binary": "binary_logloss", "multiclass": "multi_logloss", "regression": "l2"}
PRUNE_METRIC = {
    ("binary", "roc_auc"): "auc",
    ("binary", "log_loss"): "binary_logloss",
    ("multiclass", "log_loss"): "multi_logloss",
    ("regression", "rmse"): "rmse",
    ("regression", "mae"): "l1",
}


def suggest(trial) -> dict:
    """Sample one point of :data:`SEARCH_SPACE` for an Optuna trial."""
    params = {}
    for name, (kind, low, high) in SEARCH_SPACE.items():
        if kind.startswith("int"):
            params[name] = trial.suggest_int(name, low, high, log=kind.endswith("log"))
        else:
            params[name] = trial.suggest_float(name, low, high, log=kind.endswith("log"))
    return params
