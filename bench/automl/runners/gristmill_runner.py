"""Gristmill: ``gristmill.training.train.train`` as ``gristmill train`` calls it, then the registered model.

The train split becomes a Gristmill training set (an entity key ``row_id``, one label per entity, a
constant ``event_timestamp``) in a throw-away workspace; the spec asks for the benchmark's metric and
``budget_seconds`` = the budget, everything else at the product's defaults (every default trainer,
folds by core count, a 20% internal holdout, greedy ensemble, the members refitted on every row).
The time used is the whole ``train()`` call: search, ensemble, refit, holdout scoring, MLflow
logging and registration. The test split is then scored by
the registered model (``models:/<project>/<version>``), through the same ``TabularModel`` the
service uses.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import Clock, args, load, write_preds, write_result  # noqa: E402

METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def main() -> None:
    data, budget, seed, out = args()
    meta, train_df, test = load(data)
    scratch = Path(tempfile.mkdtemp(prefix="gm-", dir=out))
    os.environ["GRISTMILL_WORKSPACE"] = str(scratch / "ws")
    os.environ["GRISTMILL_FEATURE_REPO"] = str(scratch / "feature_repo")
    os.environ["GRISTMILL_BENTOS"] = str(scratch / "bentos")
    import gristmill  # noqa: F401  (sets the thread environment the CLI sets)
    import mlflow
    import pandas as pd

    from gristmill.spec import parse_spec
    from gristmill.training.train import configure_mlflow, train
    from gristmill.workspace import Workspace

    project = "bench_" + meta["name"]
    spec = parse_spec({
        "project": project,
        "sources": [{"path": "unused"}],
        "entity": {"name": "row", "key": "row_id"},
        "features": [{"table": "t"}],
        "label": {"table": "labels", "target": "target", "timestamp": "as_of"},
        "training": {"task": meta["task"], "metric": METRIC[meta["task"]], "budget_seconds": budget,
                     "seed": seed},
    }, "bench.yaml")
    ws = Workspace.resolve().ensure()
    frame = train_df.copy()
    frame.insert(0, "row_id", [f"r{i}" for i in range(len(frame))])
    frame.insert(1, "event_timestamp", pd.Timestamp("2024-01-01", tz="UTC"))
    folder = ws.datasets(project)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{project}-bench.parquet"
    frame.to_parquet(path, index=False)

    clock = Clock()
    result = train(ws, spec, f"{project}-bench", path, budget_seconds=budget)
    fit_s = clock.lap()
    configure_mlflow(ws)
    model = mlflow.pyfunc.load_model(f"models:/{project}/{result.version}").unwrap_python_model().model
    scores = model.scores(model.frame(test.drop(columns=["target"])))
    classes = [str(c) for c in model.classes]
    if meta["task"] == "binary" and classes != ["0", "1"]:
        raise SystemExit(f"unexpected binary class order {classes}")
    predict_s = clock.lap()
    write_preds(out, meta, scores, classes)
    write_result(out, system="gristmill", version=gristmill.__version__ if hasattr(gristmill, "__version__")
                 else "", fit_seconds=fit_s, predict_seconds=predict_s, train_seconds_reported=result.seconds,
                 n_trials=result.n_trials, best=result.best_params, ensemble=result.ensemble,
                 internal_holdout_score=result.holdout_score)


if __name__ == "__main__":
    main()
