"""Trainings tagged with their job and process: the report hook, idempotent registration per job,
stale RUNNING runs and trials of a dead process marked failed, fail_orphans for a dead job."""

import os
import subprocess
import sys

import optuna
import pytest
from mlflow import MlflowClient

from gristmill.errors import GristmillError
from gristmill.training import recovery
from gristmill.training.train import configure_mlflow, study_storage, train
from test_train import _dataset, _spec


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_report_hook_and_idempotent_registration_per_job(workspace):
    dataset_id, path = _dataset(workspace, "toy_job", "binary")
    seen: list[dict] = []
    first = train(workspace, _spec("toy_job", "binary"), dataset_id, path, job_id="job-1", report=seen.append)
    stages = [r["stage"] for r in seen]
    assert stages[0] == "search" and stages[-1] == "register" and "refit" in stages
    assert all(set(r) == {"stage", "done", "total", "best", "metric", "eta_seconds", "message"} for r in seen)
    assert seen[-1]["done"] == first.n_trials and seen[-1]["total"] == 3 and seen[-1]["metric"] == first.metric
    assert all(r["eta_seconds"] >= 0 for r in seen)
    again = train(workspace, _spec("toy_job", "binary"), dataset_id, path, job_id="job-1")
    assert again.version == first.version and again.run_id == first.run_id
    configure_mlflow(workspace)
    versions = MlflowClient().search_model_versions("name = 'toy_job'")
    assert len(versions) == 1 and versions[0].tags["gristmill_job"] == "job-1"
    run = MlflowClient().get_run(first.run_id)
    assert run.data.tags["gristmill_job"] == "job-1" and run.data.tags["gristmill_pid"] == str(os.getpid())
    trials = optuna.load_study(study_name=run.data.tags["optuna_study"],
                               storage=study_storage(workspace, "toy_job")).trials
    ran = [t for t in trials if t.state.is_finished()]  # enqueued defaults never run stay WAITING
    assert ran and all(t.user_attrs.get("gristmill_job") == "job-1" for t in ran)
    assert len([t for t in ran if t.state == optuna.trial.TrialState.COMPLETE]) <= 3  # max_trials
    with pytest.raises(GristmillError, match="job id"):
        train(workspace, _spec("toy_job", "binary"), dataset_id, path, job_id="x' or '1")


def _left_running(ws, project: str, tags: dict):
    """A parent run with a nested run and a study trial left RUNNING, as a killed process leaves them."""
    exp_id = configure_mlflow(ws, project)
    client = MlflowClient()
    parent = client.create_run(exp_id, tags=tags)
    child = client.create_run(exp_id, tags={**tags, "mlflow.parentRunId": parent.info.run_id})
    study = optuna.create_study(study_name=f"{project}:d:lightgbm:4:shuffle",
                                storage=study_storage(ws, project), load_if_exists=True)
    trial = study.ask()
    for k, v in tags.items():
        trial.set_user_attr(k, v)
    return client, parent.info.run_id, child.info.run_id, study


def test_next_training_marks_runs_of_a_dead_process_failed(workspace, caplog):
    dead = {recovery.HOST: os.uname().nodename, recovery.PID: str(_dead_pid())}
    client, parent, child, study = _left_running(workspace, "toy_stale", dead)
    alive = client.create_run(client.get_experiment_by_name("gristmill/toy_stale").experiment_id,
                              tags=recovery.process_tags()).info.run_id
    dataset_id, path = _dataset(workspace, "toy_stale", "binary")
    with caplog.at_level("WARNING"):
        train(workspace, _spec("toy_stale", "binary"), dataset_id, path)
    assert client.get_run(parent).info.status == "FAILED" and client.get_run(child).info.status == "FAILED"
    assert client.get_run(alive).info.status == "RUNNING"  # this process lives: left alone
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    assert "left RUNNING by a process that is gone" in caplog.text


def test_fail_orphans_by_job_and_by_run_ids(workspace):
    tags = {**recovery.process_tags("job-9")}  # alive process: only fail_orphans may end them
    client, parent, child, study = _left_running(workspace, "toy_orphan", tags)
    other = client.create_run(client.get_experiment_by_name("gristmill/toy_orphan").experiment_id).info.run_id
    marked = recovery.fail_orphans(workspace, "toy_orphan", job_id="job-9")
    assert set(marked["runs"]) == {parent, child} and len(marked["trials"]) == 1
    assert client.get_run(other).info.status == "RUNNING"
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    assert recovery.fail_orphans(workspace, "toy_orphan", run_ids=[other])["runs"] == [other]
    with pytest.raises(GristmillError):
        recovery.fail_orphans(workspace, "toy_orphan")
