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


# -- two worker hosts ----------------------------------------------------------------------------
class Relay:
    """TCP forwarding from ``listen`` (an address on a veth) to 127.0.0.1 on the same port, so a
    network namespace reaches the loopback PostgreSQL and Redis as if they were on another machine."""

    def __init__(self, listen: str, port: int) -> None:
        import socket
        import threading

        self.sock = socket.create_server((listen, port))
        self.port = port
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.port))
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        import socket

        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)


def make_hosts(names: list[str]) -> tuple[list[dict], str | None]:
    """A network namespace per name, joined to this one by a veth pair on its own /30 (host side
    .1, namespace side .2), with PostgreSQL and Redis relayed on the host side. Returns the hosts
    (empty, with the reason, when namespaces cannot be made here: not root, no ``ip``)."""
    import random
    import shutil

    if os.geteuid() != 0 or shutil.which("ip") is None:
        return [], "network namespaces need root and iproute2's ip"
    tag, octet = secrets.token_hex(2), random.randint(16, 250)
    hosts = []
    for i, name in enumerate(names):
        ns, here, there = f"gm-{tag}-{i}", f"gm{tag}h{i}", f"gm{tag}n{i}"
        gateway, inside = f"10.231.{octet}.{4 * i + 1}", f"10.231.{octet}.{4 * i + 2}"
        steps = [("netns", "add", ns), ("link", "add", here, "type", "veth", "peer", "name", there),
                 ("link", "set", there, "netns", ns), ("addr", "add", f"{gateway}/30", "dev", here),
                 ("link", "set", here, "up"),
                 ("netns", "exec", ns, "ip", "addr", "add", f"{inside}/30", "dev", there),
                 ("netns", "exec", ns, "ip", "link", "set", there, "up"),
                 ("netns", "exec", ns, "ip", "link", "set", "lo", "up")]
        host = {"name": name, "ns": ns, "link": here, "gateway": gateway, "relays": []}
        hosts.append(host)
        for step in steps:
            done = _ip(*step)
            if done.returncode:
                drop_hosts(hosts)
                return [], f"`ip {' '.join(step)}` failed: {done.stderr.strip()}"
        host["relays"] = [Relay(gateway, 5432), Relay(gateway, 6379)]
    return hosts, None


def drop_hosts(hosts: list[dict]) -> None:
    for host in hosts:
        for relay in host["relays"]:
            relay.close()
        _ip("link", "del", host["link"])   # its peer in the namespace goes with it
        _ip("netns", "del", host["ns"])


@pytest.fixture
def team_db(workspace, end_team_database):
    """The workspace in team mode: a fresh PostgreSQL database (metadata and Optuna) and a Redis db."""
    import psycopg
    import redis

    db = f"gm_obs_hosts_{secrets.token_hex(4)}"
    redis_db = int(os.environ.get("GRISTMILL_TEST_REDIS_DB", "13"))
    admin = psycopg.connect(POSTGRES, autocommit=True)
    admin.execute(f'CREATE DATABASE "{db}"')
    redis.Redis(host="127.0.0.1", port=6379, db=redis_db).flushdb()
    saved = {k: os.environ.get(k) for k in ("GRISTMILL_METADATA_URL", "GRISTMILL_BROKER_URL")}
    os.environ["GRISTMILL_METADATA_URL"] = f"postgresql://root@127.0.0.1:5432/{db}"
    os.environ["GRISTMILL_BROKER_URL"] = f"redis://127.0.0.1:6379/{redis_db}"
    (workspace.root / "gristmill.yaml").write_text(
        "jobs: {heartbeat_seconds: 1, lost_after_seconds: 10, retry_backoff_seconds: 1}\n")
    try:
        yield workspace, db, redis_db
    finally:
        admin.close()
        end_team_database(db, saved)


def test_one_study_spreads_over_two_worker_hosts(team_db, add_tables, tmp_path):
    """Two `gristmill worker` processes, each in its own network namespace (PostgreSQL and Redis
    reached over a veth, not loopback), with its own hostname, working folder, HOME, TMPDIR and
    config folder, sharing only the databases, the broker and the workspace folder (the lake);
    one training with ``workers: 2`` puts trials of one Optuna study on both."""
    import shutil

    import pandas as pd
    import yaml

    from gristmill import pipeline
    from gristmill.config import metadata
    from gristmill.identity import store as identity
    from gristmill.jobs import store
    from gristmill.services import Context, invoke
    from gristmill.spec import parse_spec

    ws, db, redis_db = team_db
    spec = {"project": "twohosts", "sources": [{"path": "/nonexistent/unused.csv"}],
            "entity": {"name": "user", "key": "user_id"},
            "features": [{"table": "profile", "timestamp": "updated"}],
            "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
            "training": {"budget_seconds": 30, "trainers": ["lightgbm"]}}
    token = invoke(Context.local(ws), "users.add", name="hana")["token"]
    hana = identity.authenticate(metadata(ws), token)
    invoke(Context(ws, hana), "projects.register", project="twohosts", spec=yaml.safe_dump(spec))
    import numpy as np

    rng = np.random.default_rng(3)
    ids = [f"u{i}" for i in range(600)]
    score = rng.normal(size=600)
    add_tables(ws, "twohosts", {
        "profile": pd.DataFrame({"user_id": ids, "score": score, "noise": rng.normal(size=600),
                                 "updated": pd.Timestamp("2024-01-01")}),
        "labels": pd.DataFrame({"user_id": ids, "y": (score + rng.normal(scale=0.7, size=600) > 0).astype(int),
                                "as_of": pd.Timestamp("2024-02-01")})})
    parsed = parse_spec(spec, "twohosts.yaml")
    pipeline.features_apply(ws, parsed)
    pipeline.features_dataset(ws, parsed)

    hosts, why_not = make_hosts(["host-a", "host-b"])
    if why_not:   # the fallback: two worker processes on this network, the rest kept apart
        print(f"no network namespaces ({why_not}): the workers share this machine's loopback")
    workers = []
    try:
        for i, name in enumerate(["host-a", "host-b"]):
            home = tmp_path / name
            for sub in ("home", "work", "tmp", "config"):
                (home / sub).mkdir(parents=True)
            via = hosts[i]["gateway"] if hosts else "127.0.0.1"
            env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                   "HOME": str(home / "home"), "TMPDIR": str(home / "tmp"),
                   "GRISTMILL_CONFIG_DIR": str(home / "config"), "GRISTMILL_WORKSPACE": str(ws.root),
                   "GRISTMILL_FEATURE_REPO": os.environ["GRISTMILL_FEATURE_REPO"],
                   "GRISTMILL_BENTOS": os.environ["GRISTMILL_BENTOS"],
                   "GRISTMILL_METADATA_URL": f"postgresql://root@{via}:5432/{db}",
                   "GRISTMILL_BROKER_URL": f"redis://{via}:6379/{redis_db}",
                   "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONDONTWRITEBYTECODE": "1"}
            command = [str(Path(sys.executable).parent / "gristmill"), "worker", "--name", name, "--slots", "1"]
            if hosts:   # its own network and its own hostname (a UTS namespace)
                command = ["ip", "netns", "exec", hosts[i]["ns"], shutil.which("unshare") or "unshare", "--uts",
                           "sh", "-c", f'hostname "gm-{name}" && exec "$@"', "sh", *command]
            log = open(home / "worker.log", "wb")
            workers.append(subprocess.Popen(command, cwd=home / "work", env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True))
            log.close()
        md = metadata(ws)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            live = {w["name"]: w for w in store.list_workers(md, 10) if w["status"] == "live"}
            if set(live) == {"host-a", "host-b"}:
                break
            assert all(p.poll() is None for p in workers), [(tmp_path / n / "worker.log").read_text()[-2000:]
                                                           for n in ("host-a", "host-b")]
            time.sleep(0.5)
        else:
            pytest.fail("the workers did not start: " + str([(tmp_path / n / "worker.log").read_text()[-2000:]
                                                               for n in ("host-a", "host-b")]))
        if hosts:
            assert {live[n]["host"] for n in live} == {"gm-host-a", "gm-host-b"}
        job = invoke(Context(ws, hana, submit_jobs=True), "models.train", project="twohosts", budget=30,
                     workers=2)["job"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and store.row(md, job["id"]).state not in store.FINAL:
            time.sleep(1)
        done = store.get(md, job["id"])
        assert done["state"] == "succeeded", (done, [(tmp_path / n / "worker.log").read_text()[-3000:]
                                                     for n in ("host-a", "host-b")])
        helpers = store.listing(md, None, kind="models.trials")["jobs"]
        assert helpers and {h["state"] for h in helpers} == {"succeeded"}, [
            (h["error"], [line["message"] for line in store.logs(md, h["id"])["lines"]][-15:]) for h in helpers]
        assert {done["worker"], *(h["worker"] for h in helpers)} == {"host-a", "host-b"}
    finally:
        for proc in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        drop_hosts(hosts)
    storage = study_storage(ws, "twohosts")
    trials = [t for name in optuna.get_all_study_names(storage)
              for t in optuna.load_study(study_name=name, storage=storage).get_trials(
                  states=(optuna.trial.TrialState.COMPLETE,))]
    assert {t.user_attrs.get("gristmill_worker") for t in trials} == {"host-a", "host-b"}
    if hosts:
        assert {t.user_attrs.get("gristmill_host") for t in trials} == {"gm-host-a", "gm-host-b"}
