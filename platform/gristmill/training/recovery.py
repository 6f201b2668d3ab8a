"""Recovery after a killed training: MLflow runs and Optuna trials left RUNNING end FAILED / FAIL.

Every training tags its MLflow runs (the parent and each nested trial run) and its Optuna trials
with the process that runs them (``gristmill_host``, ``gristmill_pid``) and, when a job queue runs it,
the job (``gristmill_job``) and the worker (``gristmill_worker``). Two ways back:

- :func:`fail_stale` (called by every training at its start): runs and trials of the project whose
  process is gone from this host are marked failed, with a log line each;
- :func:`fail_orphans` (called by the job queue when a worker died): the runs and trials of a job
  (by its tag, or by run ids) still RUNNING are marked failed, whatever host ran them.
"""

from __future__ import annotations

import logging
import os
import socket

from gristmill.workspace import Workspace

log = logging.getLogger(__name__)
JOB, HOST, PID, WORKER = "gristmill_job", "gristmill_host", "gristmill_pid", "gristmill_worker"


def check_job_id(job_id: str | None) -> str | None:
    """A job id as a tag value: letters, digits and ``_.:-`` only (it goes into search filters)."""
    import re

    from gristmill.errors import GristmillError

    if job_id is None:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", str(job_id)):
        raise GristmillError(f"job id {job_id!r} must be 1-128 letters, digits or _.:-")
    return str(job_id)


def process_tags(job_id: str | None = None) -> dict[str, str]:
    """The tags naming this process (and the job) on a run or trial."""
    tags = {HOST: socket.gethostname(), PID: str(os.getpid())}
    if os.environ.get("GRISTMILL_WORKER_NAME"):   # run by a job on a `gristmill worker`
        tags[WORKER] = os.environ["GRISTMILL_WORKER_NAME"][:128]
    if job_id:
        tags[JOB] = check_job_id(job_id)
    return tags


def process_alive(host: str | None, pid: str | int | None) -> bool:
    """Whether the process ``pid`` on ``host`` may still run: a process of another host (or an
    untagged one) counts as alive, since this host cannot tell."""
    if not host or pid in (None, "") or host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _runs(client, exp_id: str, clause: str) -> list:
    from mlflow.entities import ViewType

    return client.search_runs([exp_id], filter_string=f"attributes.status = 'RUNNING'{clause}",
                              run_view_type=ViewType.ACTIVE_ONLY, max_results=5000)


def _fail_runs(client, exp_id: str, parents: list) -> list[str]:
    """Mark ``parents`` and their RUNNING nested runs FAILED; the ids marked."""
    marked = []
    for run in parents:
        run_id = run.info.run_id
        children = _runs(client, exp_id, f" and tags.mlflow.parentRunId = '{run_id}'")
        for r in [*children, run]:
            if r.info.status == "RUNNING" and r.info.run_id not in marked:
                client.set_terminated(r.info.run_id, status="FAILED")
                marked.append(r.info.run_id)
    return marked


def _experiment(ws: Workspace, project: str):
    from mlflow import MlflowClient

    from gristmill.config import mlflow_in_use
    from gristmill.training.train import configure_mlflow, experiment_name

    if not mlflow_in_use(ws):
        return None, None
    configure_mlflow(ws)
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment_name(project))
    return client, (found.experiment_id if found else None)


def _project_studies(ws: Workspace, project: str):
    """(storage, study summaries) of the project's studies, or (None, [])."""
    import optuna

    from gristmill.training.train import study_storage

    storage = study_storage(ws, project, create=False)
    if storage is None:
        return None, []
    return storage, [s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
                     if s.study_name.startswith(f"{project}:")]


def _fail_trials(storage, studies, should_fail) -> list[str]:
    import optuna

    marked = []
    for summary in studies:
        study_id = storage.get_study_id_from_name(summary.study_name)
        for t in storage.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if should_fail(t.user_attrs):
                storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
                marked.append(f"{summary.study_name}#{t.number}")
    return marked


def fail_stale(ws: Workspace, project: str) -> dict[str, list[str]]:
    """Runs and trials of ``project`` left RUNNING by a process of this host that no longer lives:
    marked FAILED / FAIL (each said in a log line); returns what was marked."""
    client, exp_id = _experiment(ws, project)
    runs: list[str] = []
    if exp_id is not None:
        stale = [r for r in _runs(client, exp_id, f" and tags.{HOST} = '{socket.gethostname()}'")
                 if "mlflow.parentRunId" not in r.data.tags
                 and not process_alive(r.data.tags.get(HOST), r.data.tags.get(PID))]
        runs = _fail_runs(client, exp_id, stale)
    storage, studies = _project_studies(ws, project)
    trials = _fail_trials(storage, studies, lambda a: not process_alive(a.get(HOST), a.get(PID))) \
        if storage is not None else []
    if runs:
        log.warning("marked %d MLflow run(s) of %s FAILED: left RUNNING by a process that is gone (%s)",
                    len(runs), project, ", ".join(runs))
    if trials:
        log.warning("marked %d Optuna trial(s) of %s FAIL: left RUNNING by a process that is gone (%s)",
                    len(trials), project, ", ".join(trials))
    return {"runs": runs, "trials": trials}


def fail_orphans(ws: Workspace, project: str, run_ids: list[str] | None = None,
                 job_id: str | None = None) -> dict[str, list[str]]:
    """Mark the RUNNING MLflow runs of a dead job FAILED (the given runs, or every parent run
    tagged ``gristmill_job=job_id``, with their nested runs) and its RUNNING Optuna trials FAIL
    (those tagged with the job, or by the dead runs' processes). Returns what was marked."""
    from gristmill.errors import GristmillError

    if not run_ids and not job_id:
        raise GristmillError("fail_orphans needs run ids or a job id")
    job_id = check_job_id(job_id)
    client, exp_id = _experiment(ws, project)
    runs: list[str] = []
    owners: set[tuple[str, str]] = set()
    if exp_id is not None:
        if run_ids:
            parents = [r for r in (client.get_run(i) for i in run_ids) if r.info.status == "RUNNING"]
        else:
            parents = [r for r in _runs(client, exp_id, f" and tags.{JOB} = '{job_id}'")
                       if "mlflow.parentRunId" not in r.data.tags]
        owners = {(r.data.tags.get(HOST, ""), r.data.tags.get(PID, "")) for r in parents}
        runs = _fail_runs(client, exp_id, parents)
    storage, studies = _project_studies(ws, project)

    def dead(attrs: dict) -> bool:
        if job_id and attrs.get(JOB) == str(job_id):
            return True
        return (attrs.get(HOST, ""), attrs.get(PID, "")) in owners

    trials = _fail_trials(storage, studies, dead) if storage is not None else []
    if runs or trials:
        log.warning("job %s of %s: marked %d MLflow run(s) FAILED and %d Optuna trial(s) FAIL",
                    job_id or ",".join(run_ids or []), project, len(runs), len(trials))
    return {"runs": runs, "trials": trials}
