"""One Optuna study spread over several processes or machines.

The training that owns the study (``training.workers: N``) writes a *study reference* (a JSON-able
dict: workspace, project, spec, training set, study name, out-of-fold folder, deadline as epoch
seconds, helper index, job id, parent MLflow run) and starts N - 1 helpers: through its
``spawn_helpers(ref, n)`` hook (the job queue submits sub-jobs that call :func:`run_trials`), or,
without one, as local processes (``python -m gristmill.training.distributed <ref.json>``). Each helper
rebuilds the same rows, holdout and folds from the training set (deterministic), joins the study
with its own sampler seed, runs trials until the deadline and writes their out-of-fold predictions
into the shared folder; the owner runs trials too, waits for the helpers' last trials, then builds
the ensemble from every complete trial of the study. Helpers on other machines need the same
workspace folder (the lake) and, for the study, the team's PostgreSQL (``training.optuna``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Callable

from gristmill.workspace import Workspace

log = logging.getLogger(__name__)
#: Seconds the owner waits past the deadline for helpers' last trials.
GRACE = 10.0
HELPER = "gristmill_helper"


def study_ref(ws: Workspace, spec, dataset_id: str, dataset_path: Path, study_name: str, oof_dir: Path,
              deadline: float, job_id: str | None, parent_run_id: str | None, storage_url: str | None) -> dict:
    """The reference a helper needs to join the study (JSON-able)."""
    return {"workspace": str(ws.root), "project": spec.project, "spec": spec.model_dump(mode="json"),
            "dataset_id": dataset_id, "dataset_path": str(dataset_path), "study_name": study_name,
            "storage_url": storage_url, "oof_dir": str(oof_dir), "deadline": float(deadline),
            "seed": spec.training.seed, "helper": 0, "job_id": job_id, "parent_run_id": parent_run_id}


def helper_refs(ref: dict, n: int) -> list[dict]:
    """The references of helpers 1..n (each its own sampler seed)."""
    return [{**ref, "helper": i} for i in range(1, n + 1)]


def spawn_local(ref: dict, n: int) -> list:
    """Start ``n`` helper processes on this machine; their Popen handles."""
    import os
    import subprocess

    from gristmill.workspace import owner_only_file

    folder = Path(ref["oof_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    procs = []
    for one in helper_refs(ref, n):
        path = folder / f"helper-{one['helper']}.json"
        path.write_text(json.dumps(one))
        owner_only_file(path)
        log_path = folder / f"helper-{one['helper']}.log"
        with open(log_path, "ab") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "gristmill.training.distributed", str(path)],
                                          stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ),
                                          start_new_session=True))
    log.info("started %d local helper process(es) for study %s", n, ref["study_name"])
    return procs


def wait_for_helpers(study, deadline: float, helpers, grace: float = GRACE) -> None:
    """Until the deadline (epoch seconds) plus ``grace``: wait while another process still runs a
    trial of ``study`` (or a local helper process lives); local helpers still alive then are ended."""
    import os

    import optuna

    from gristmill.training.recovery import PID

    me = str(os.getpid())
    local = [h for h in (helpers or []) if hasattr(h, "poll")]
    quiet = 0  # polls in a row with no helper trial running (a helper between two trials is brief)
    while time.time() < deadline + grace:
        running = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
                   if t.user_attrs.get(PID) != me]
        alive = [p for p in local if p.poll() is None]
        quiet = 0 if running or alive else quiet + 1
        if quiet >= (1 if local else 3):
            break
        time.sleep(0.5)
    for proc in local:
        if proc.poll() is None:
            log.warning("helper process %d still runs past the deadline: ended", proc.pid)
            proc.terminate()
            try:
                proc.wait(10)
            except Exception:
                proc.kill()


def run_trials(ws: Workspace, ref: dict, report: Callable[[dict], None] | None = None) -> int:
    """Join the study of ``ref`` and run trials until its deadline; returns the trials this process
    completed. What a queue worker (or a local helper process) runs."""
    import optuna
    from mlflow import MlflowClient

    from gristmill.spec import parse_spec
    from gristmill.training import recovery
    from gristmill.training.search import Pace, run_search
    from gristmill.training.text import cache_at
    from gristmill.training.prepare import prepare
    from gristmill.training.train import AFTER_SEARCH, Reporter, configure_mlflow, study_storage

    spec = parse_spec(ref["spec"], "study reference")
    cfg = spec.training
    p = prepare(ws, spec, ref["dataset_id"], Path(ref["dataset_path"]))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=ref["study_name"], storage=study_storage(ws, spec.project),
        sampler=optuna.samplers.TPESampler(seed=int(ref["seed"]) + 7919 * int(ref["helper"]),
                                           multivariate=True, group=True),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=len(cfg.trainers), n_warmup_steps=1))
    end = time.monotonic() + (float(ref["deadline"]) - time.time())
    pace = Pace.for_budget(end, AFTER_SEARCH, p.folds)
    tags = {**recovery.process_tags(ref.get("job_id")), HELPER: str(ref["helper"])}
    exp_id = configure_mlflow(ws, spec.project)
    client = MlflowClient()
    progress_of = Reporter(report, p.metric.name, cfg.max_trials, end)
    mine = []

    def on_trial(trial, name, params, score, seconds):
        mine.append(trial.number)
        run_tags = {"trainer": name, "optuna_trial": str(trial.number), **tags}
        if ref.get("parent_run_id"):
            run_tags["mlflow.parentRunId"] = ref["parent_run_id"]
        run = client.create_run(exp_id, run_name=f"trial {trial.number} {name}", tags=run_tags)
        for k, v in params.items():
            client.log_param(run.info.run_id, k, v)
        client.log_metric(run.info.run_id, f"cv_{p.metric.name}", score)
        client.log_metric(run.info.run_id, "seconds", seconds)
        client.set_terminated(run.info.run_id)
        progress_of("search", len(mine), score, f"helper {ref['helper']}: trial {trial.number} {name}")

    with cache_at(ws.root / "cache" / "text"):
        run_search(p.X, p.y, p.weight, p.fit_task, p.metric, cfg.trainers, p.splits, pace, study,
                   Path(ref["oof_dir"]), cfg.max_trials, False, on_trial,
                   p.X_holdout if cfg.refit != "train" else None, cfg.ensemble, trial_attrs=tags,
                   keep_refit_time=cfg.refit != "bag")
    log.info("helper %s of study %s completed %d trial(s)", ref["helper"], ref["study_name"], len(mine))
    return len(mine)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m gristmill.training.distributed <study-ref.json>", file=sys.stderr)
        return 2
    from gristmill.errors import GristmillError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        ref = json.loads(Path(argv[0]).read_text())
        run_trials(Workspace.resolve(ref["workspace"]), ref)
    except GristmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
