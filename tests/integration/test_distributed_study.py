"""Team-mode training on the real PostgreSQL: the Optuna study in RDB storage shared by two
processes, MLflow runs in a PostgreSQL tracking store that `mlflow server` reads, and a study that
resumes after its training process is killed (its run ends FAILED, its trial FAIL)."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from gristmill.config import load_config, optuna_storage_url
from gristmill.training.train import configure_mlflow, study_storage, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "gristmill" / "training"))
from test_train import _dataset, _spec  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]
POSTGRES = os.environ.get("GRISTMILL_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_workspace(workspace):
    import psycopg

    base = f"gm_test_{secrets.token_hex(4)}"
    names = [f"{base}_optuna", f"{base}_mlflow"]
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES}: {exc}")
    for name in names:
        admin.execute(f'CREATE DATABASE "{name}"')
    root = POSTGRES.rsplit("/", 1)[0]
    (workspace.root / "gristmill.yaml").write_text(
        f"mlflow:\n  tracking: {root}/{names[1]}\n  artifacts: {workspace.root / 'shared-artifacts'}\n"
        f"training:\n  optuna: {root}/{names[0]}\n")
    yield workspace, f"{root}/{names[1]}"
    for name in names:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_team_stores_two_processes_and_mlflow_server(pg_workspace, free_port, tmp_path):
    ws, tracking = pg_workspace
    assert load_config(ws).team_mode and optuna_storage_url(ws).startswith("postgresql+psycopg://")
    dataset_id, path = _dataset(ws, "team_dist", "binary")
    spec = _spec("team_dist", "binary", budget_seconds=40, max_trials=200, trainers=["lightgbm", "linear"])
    result = train(ws, spec, dataset_id, path, workers=2, job_id="job-pg-1")
    configure_mlflow(ws)
    run = MlflowClient().get_run(result.run_id)
    assert run.info.artifact_uri.startswith((ws.root / "shared-artifacts").as_uri())
    study = optuna.load_study(study_name=run.data.tags["optuna_study"], storage=study_storage(ws, "team_dist"))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len({t.user_attrs["gristmill_pid"] for t in complete}) == 2
    assert all(t.user_attrs["gristmill_job"] == "job-pg-1" for t in complete)
    assert result.n_trials == len(complete)
    # the same job again: the registered version, not a second one
    assert train(ws, spec, dataset_id, path, job_id="job-pg-1").version == result.version
    assert len(MlflowClient().search_model_versions("name = 'team_dist'")) == 1

    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                               tracking.replace("postgresql://", "postgresql+psycopg://"), "--host",
                               "127.0.0.1", "--port", str(free_port), "--workers", "1"],
                              stdout=open(tmp_path / "mlflow.log", "wb"), stderr=subprocess.STDOUT, env=env,
                              start_new_session=True)
    try:
        url = f"http://127.0.0.1:{free_port}/api/2.0/mlflow/experiments/search?max_results=100"
        for _ in range(120):
            try:
                body = json.loads(urllib.request.urlopen(url, timeout=2).read())
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail((tmp_path / "mlflow.log").read_text()[-2000:])
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not answer: " + (tmp_path / "mlflow.log").read_text()[-2000:])
        assert "gristmill/team_dist" in {e["name"] for e in body["experiments"]}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_train import _spec
from gristmill.training.train import train
from gristmill.workspace import Workspace
spec = _spec("team_kill", "binary", budget_seconds=60, max_trials=200, trainers=["lightgbm", "linear"])
train(Workspace.resolve(), spec, {dataset_id!r}, {path!r})
"""


def test_killed_training_resumes_and_its_run_ends_failed(pg_workspace):
    ws, _ = pg_workspace
    dataset_id, path = _dataset(ws, "team_kill", "binary")
    tests = str(Path(__file__).resolve().parents[1] / "unit" / "gristmill" / "training")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(tests=tests, dataset_id=dataset_id,
                                                                  path=str(path))], env=dict(os.environ))
    storage = study_storage(ws, "team_kill")
    deadline = time.time() + 120
    done = []
    while time.time() < deadline and len(done) < 3:
        time.sleep(1)
        studies = optuna.get_all_study_names(storage)
        if studies:
            done = optuna.load_study(study_name=studies[0], storage=storage).get_trials(
                states=(optuna.trial.TrialState.COMPLETE,))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(done) >= 3, "the training did not complete 3 trials in time"
    configure_mlflow(ws, "team_kill")
    exp = MlflowClient().get_experiment_by_name("gristmill/team_kill")
    killed = MlflowClient().search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
    assert killed  # left RUNNING by kill -9

    result = train(ws, _spec("team_kill", "binary", budget_seconds=15, max_trials=200,
                             trainers=["lightgbm", "linear"]), dataset_id, path)
    for run in killed:
        assert MlflowClient().get_run(run.info.run_id).info.status == "FAILED"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    old = {t.number for t in done}
    assert result.n_trials > len(old)  # the killed process's trials are reused
    assert old <= {t.number for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
