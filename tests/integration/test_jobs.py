"""The job queue in team mode, on the real servers: PostgreSQL metadata, a Redis broker, a real
`gristmill server` and real `gristmill worker` processes.

Three users' trainings on two workers; a worker killed with kill -9 mid-training (the job runs again
on the other worker, one model version, no MLflow run left RUNNING); a running job cancelled; the
CLI following a job with its result.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.integration]
BIN = Path(sys.executable).parent
USERS = {"ann": "annshop", "bob": "bobshop", "cat": "catshop"}


def _spec(project: str, budget: int = 8) -> dict:
    return {"project": project, "sources": [{"path": "/nonexistent/unused.csv"}],
            "entity": {"name": "user", "key": "user_id"},
            "features": [{"table": "profile", "timestamp": "updated"}],
            "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
            "training": {"budget_seconds": budget, "trainers": ["lightgbm"]}}


def _tables(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = 400
    ids = [f"u{i}" for i in range(n)]
    score = rng.normal(size=n)
    return {"profile": pd.DataFrame({"user_id": ids, "score": score, "noise": rng.normal(size=n),
                                     "updated": pd.Timestamp("2024-01-01")}),
            "labels": pd.DataFrame({"user_id": ids, "y": (score + rng.normal(scale=0.5, size=n) > 0).astype(int),
                                    "as_of": pd.Timestamp("2024-02-01")})}


@pytest.fixture(scope="module")
def team_queue(tmp_path_factory, add_tables, end_team_database):
    """A team-mode workspace (PostgreSQL + Redis) with three users' projects ready to train."""
    import psycopg

    root = tmp_path_factory.mktemp("jobs")
    db = f"gm_jobs_{secrets.token_hex(4)}"
    with psycopg.connect("host=127.0.0.1 user=root dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    redis_db = 9
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=redis_db).flushdb()
    env = {**os.environ, "GRISTMILL_WORKSPACE": str(root / "ws"), "GRISTMILL_FEATURE_REPO": str(root / "fr"),
           "GRISTMILL_BENTOS": str(root / "bentos"), "GRISTMILL_CONFIG_DIR": str(root / "cfg"),
           "GRISTMILL_METADATA_URL": f"postgresql://root@127.0.0.1:5432/{db}",
           "GRISTMILL_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}"}
    saved = {k: os.environ.get(k) for k in env if k.startswith("GRISTMILL")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("GRISTMILL")})
    try:
        from gristmill import pipeline
        from gristmill.config import metadata
        from gristmill.identity import store
        from gristmill.services import Context, invoke
        from gristmill.spec import parse_spec
        from gristmill.workspace import Workspace

        ws = Workspace.resolve().ensure()
        (ws.root / "gristmill.yaml").write_text(
            "jobs: {heartbeat_seconds: 1, lost_after_seconds: 6, retry_backoff_seconds: 1}\n")
        local = Context.local(ws)
        tokens = {}
        for i, (user, project) in enumerate(USERS.items()):
            tokens[user] = invoke(local, "users.add", name=user)["token"]
            me = Context(ws, store.authenticate(metadata(ws), tokens[user]))
            invoke(me, "projects.register", project=project, spec=yaml.safe_dump(_spec(project)))
            add_tables(ws, project, _tables(i))
            spec = parse_spec(_spec(project), f"{project}.yaml")
            pipeline.features_apply(ws, spec)
            pipeline.features_dataset(ws, spec)
        yield {"ws": ws, "env": env, "tokens": tokens, "root": root}
    finally:
        end_team_database(db, saved)


@pytest.fixture(scope="module")
def server(team_queue, start_server):
    with start_server([str(BIN / "gristmill"), "server"], team_queue["root"], team_queue["env"],
                      team_queue["root"] / "server.log") as base:
        yield base


def _h(team_queue, user):
    return {"Authorization": f"Bearer {team_queue['tokens'][user]}"}


def _wait(base, headers, job_id, states=("succeeded", "failed", "cancelled"), seconds=240, check=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["state"] in states and (check is None or check(job)):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {job['state']} after {seconds}s: {job}")


def _versions(base, headers, project):
    return httpx.get(f"{base}/projects/{project}/models", headers=headers, timeout=10).json()["versions"]


def test_three_users_trainings_on_two_workers(team_queue, server, start_worker):
    start_worker(team_queue["env"], "w1", slots=1)
    start_worker(team_queue["env"], "w2", slots=1)
    submitted = {}
    for user, project in USERS.items():
        answer = httpx.post(f"{server}/projects/{project}/train", json={"budget": 8},
                            headers=_h(team_queue, user), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["queued"] and answer.json()["job"]["user"] == user
        submitted[user] = answer.json()["job"]["id"]
    # a user sees their own jobs only
    seen = httpx.get(f"{server}/jobs", headers=_h(team_queue, "ann"), timeout=10).json()
    assert {j["user"] for j in seen["jobs"]} == {"ann"}
    other = httpx.get(f"{server}/jobs/{submitted['bob']}", headers=_h(team_queue, "ann"), timeout=10)
    assert other.status_code == 404
    done = {u: _wait(server, _h(team_queue, u), j) for u, j in submitted.items()}
    retried = {u: httpx.get(f"{server}/jobs/{j}/logs", headers=_h(team_queue, u), timeout=10).json()["lines"]
               for u, j in submitted.items() if done[u]["attempt"] > 1}
    print({u: [line["message"][:300] for line in lines if line["level"] != "INFO"] for u, lines in retried.items()})
    assert {j["state"] for j in done.values()} == {"succeeded"}, {u: (j["state"], j["error"]) for u, j in done.items()}
    assert {j["worker"] for j in done.values()} == {"w1", "w2"}
    for user, project in USERS.items():
        assert done[user]["result"]["version"] == "1"
        assert len(_versions(server, _h(team_queue, user), project)) == 1
        logs = httpx.get(f"{server}/jobs/{submitted[user]}/logs", headers=_h(team_queue, user), timeout=10).json()
        assert any("succeeded" in line["message"] for line in logs["lines"])
    audit = httpx.get(f"{server}/audit", params={"project": "annshop"}, headers=_h(team_queue, "ann"),
                      timeout=10).json()
    results = [(r["action"], r["result"], r["actor"]) for r in audit["records"] if r["action"] == "models.train"]
    assert results == [("models.train", "queued", "ann"), ("models.train", "ok", "ann")]


def test_a_worker_killed_mid_training_the_job_runs_again_elsewhere(team_queue, server, start_worker):
    from mlflow import MlflowClient

    from gristmill.training.train import configure_mlflow, experiment_name

    victim = start_worker(team_queue["env"], "w-victim", slots=1)
    headers = _h(team_queue, "ann")
    job_id = httpx.post(f"{server}/projects/annshop/train", json={"budget": 20}, headers=headers,
                        timeout=30).json()["job"]["id"]
    running = _wait(server, headers, job_id, states=("running",),
                    check=lambda j: j["worker"] == "w-victim" and (j["progress"] or {}).get("stage") == "search",
                    seconds=120)
    assert running["attempt"] == 1
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    start_worker(team_queue["env"], "w-rescue", slots=1)
    done = _wait(server, headers, job_id, seconds=300)
    assert done["state"] == "succeeded" and done["attempt"] == 2 and done["worker"] != "w-victim", done
    versions = _versions(server, headers, "annshop")
    assert len([v for v in versions if v["version"] == done["result"]["version"]]) == 1
    assert len(versions) == len({v["version"] for v in versions})
    configure_mlflow(team_queue["ws"])
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment_name("annshop"))
    running_runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
    assert running_runs == []
    logs = httpx.get(f"{server}/jobs/{job_id}/logs", headers=headers, timeout=10).json()["lines"]
    assert any("worker w-victim was lost" in line["message"] for line in logs)


def test_cancel_a_running_training(team_queue, server, start_worker):
    start_worker(team_queue["env"], "w-cancel", slots=1)
    headers = _h(team_queue, "cat")
    job_id = httpx.post(f"{server}/projects/catshop/train", json={"budget": 120}, headers=headers,
                        timeout=30).json()["job"]["id"]
    _wait(server, headers, job_id, states=("running",), seconds=120)
    refused = httpx.post(f"{server}/jobs/{job_id}/cancel", headers=_h(team_queue, "bob"), timeout=10)
    assert refused.status_code == 404                     # not bob's job, not bob's project
    asked = httpx.post(f"{server}/jobs/{job_id}/cancel", headers=headers, timeout=10)
    assert asked.status_code == 200 and asked.json()["cancel_requested"]
    done = _wait(server, headers, job_id, seconds=30)
    assert done["state"] == "cancelled"


def test_the_cli_follows_a_job_and_prints_its_result(team_queue, server, start_worker):
    import json
    import subprocess

    start_worker(team_queue["env"], "w-cli", slots=1)
    env = {**team_queue["env"], "GRISTMILL_URL": server, "GRISTMILL_TOKEN": team_queue["tokens"]["bob"]}
    out = subprocess.run([str(BIN / "gristmill"), "train", "bobshop", "--budget", "6", "--json"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["model_name"] and result["version"]
    detached = subprocess.run([str(BIN / "gristmill"), "train", "bobshop", "--budget", "6", "--detach",
                               "--json"], env=env, capture_output=True, text=True, timeout=60)
    job = json.loads(detached.stdout)
    assert job["state"] in ("queued", "dispatched", "running")
    watched = subprocess.run([str(BIN / "gristmill"), "jobs", "watch", job["id"], "--json"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout)["version"] != result["version"]
    listed = subprocess.run([str(BIN / "gristmill"), "jobs", "list", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert job["id"] in {j["id"] for j in json.loads(listed.stdout)["jobs"]}

