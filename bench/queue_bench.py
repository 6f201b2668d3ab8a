"""The job queue's throughput and wait, and what going through it costs a training.

    .venv/bin/python bench/queue_bench.py [--jobs 1000] [--users 8] [--slots 4] [--dir /tmp/gm-qbench]
        [--postgres postgresql://root@127.0.0.1:5432/postgres] [--redis redis://127.0.0.1:6379]
        [--redis-db 13] [--peer-redis-db 14] [--json]
    .venv/bin/python bench/queue_bench.py --cost [--budget 60]

Throughput (default): team mode on a fresh PostgreSQL database (dropped after) and a Redis broker, a
real `gristmill server` and two real `gristmill worker` processes (``--slots`` each). ``--users``
admin users (``jobs.noop`` is for admins) submit ``--jobs`` no-op jobs through the API at once, one
client thread each; the figures come from the jobs' own records: jobs/s from the first submit to
the last finish, queue wait (submit to start) p50/p99, per user, and how many jobs did not succeed
(lost). Each job goes the whole way a training does: policy check, record, scheduling pass, a
Celery message to the chosen worker, a claim, a child process for the attempt, its log, its end.

The peer, in the same run: plain Celery tasks on the same Redis server (another db) doing the same
nothing, on two worker processes of ``--slots`` threads with the same reliability settings
(late acks, prefetch 1), sent from the same number of threads: the broker's and Celery's own floor.

Cost (``--cost``): one project of 5,000 rows, ``gristmill train P --budget B`` in the terminal
(no server) and the same command with a server configured (submitted, followed with its progress,
run on one worker): wall time of each, and for the queued one its queue wait and run time.

Both share the machine's cores with everything they start. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def wait_ready(url: str, proc: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited:\n{log.read_text()[-2000:]}")
        time.sleep(0.3)
    raise SystemExit(f"{proc.args} not ready:\n{log.read_text()[-2000:]}")


def start(args: list[str], env: dict, log: Path, ready: str | None = None) -> subprocess.Popen:
    out = log.open("wb")
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=log.parent)
    out.close()
    if ready:
        wait_ready(ready, proc, log)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(30)


class Team:
    """A team-mode workspace on a fresh PostgreSQL database and a Redis db; a server, workers."""

    def __init__(self, root: Path, postgres: str, redis_url: str, redis_db: int) -> None:
        import psycopg
        import redis

        self.root, self.postgres = root, postgres
        self.db = f"gm_obs_bench_{secrets.token_hex(4)}"
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db}"')
        redis.Redis.from_url(f"{redis_url}/{redis_db}").flushdb()
        base = postgres.rsplit("/", 1)[0]
        self.env = {**os.environ, "GRISTMILL_WORKSPACE": str(root / "ws"),
                    "GRISTMILL_FEATURE_REPO": str(root / "fr"), "GRISTMILL_BENTOS": str(root / "bentos"),
                    "GRISTMILL_CONFIG_DIR": str(root / "cfg"), "GRISTMILL_METADATA_URL": f"{base}/{self.db}",
                    "GRISTMILL_BROKER_URL": f"{redis_url}/{redis_db}", "DO_NOT_TRACK": "1",
                    "MLFLOW_DISABLE_TELEMETRY": "true"}
        for key in ("GRISTMILL_URL", "GRISTMILL_TOKEN"):
            self.env.pop(key, None)
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("GRISTMILL")})
        from gristmill.workspace import Workspace

        self.ws = Workspace.resolve().ensure()
        (self.ws.root / "gristmill.yaml").write_text("jobs: {per_user: 8, per_project: 8}\n")
        self.procs: list[subprocess.Popen] = []
        self.url = ""

    def server(self) -> str:
        port = _port()
        self.procs.append(start([str(BIN / "gristmill"), "server", "--port", str(port)], self.env,
                                self.root / "server.log", f"http://127.0.0.1:{port}/readyz"))
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def worker(self, name: str, slots: int) -> None:
        port = _port()
        self.procs.append(start([str(BIN / "gristmill"), "worker", "--name", name, "--slots", str(slots),
                                 "--port", str(port)], self.env, self.root / f"{name}.log",
                                f"http://127.0.0.1:{port}/readyz"))

    def close(self) -> None:
        import psycopg

        for proc in reversed(self.procs):
            stop(proc)
        from gristmill.metadata import db as mdb

        for key, found in list(mdb._engines.items()):
            if self.db in key:
                found.engine.dispose()
                del mdb._engines[key]
        with psycopg.connect(self.postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


# -- throughput ----------------------------------------------------------------------------------

def gristmill_queue(team: Team, jobs: int, users: int, slots: int) -> dict:
    import httpx
    import sqlalchemy as sa

    from gristmill.config import metadata
    from gristmill.metadata.db import jobs as jobs_table
    from gristmill.services import Context, invoke

    local = Context.local(team.ws)
    tokens = {f"u{i}": invoke(local, "users.add", name=f"u{i}", admin=True)["token"] for i in range(users)}
    url = team.server()
    team.worker("qb-w1", slots)
    team.worker("qb-w2", slots)
    per_user = [jobs // users + (1 if i < jobs % users else 0) for i in range(users)]
    errors: list[str] = []

    def submit(user: str, count: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[user]}"}, timeout=60) as c:
            for _ in range(count):
                answer = c.post("/jobs/noop", json={"seconds": 0})
                if answer.status_code != 200:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")

    began = time.time()
    threads = [threading.Thread(target=submit, args=(u, n)) for u, n in zip(tokens, per_user)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    submitted = time.time() - began
    md = metadata(team.ws)
    deadline = time.time() + max(600, jobs * 2)
    while time.time() < deadline:
        with md.engine.connect() as conn:
            active = conn.execute(sa.select(sa.func.count()).select_from(jobs_table).where(
                jobs_table.c.state.in_(("queued", "dispatched", "running")))).scalar_one()
        if not active:
            break
        time.sleep(1)
    with md.engine.connect() as conn:
        rows = conn.execute(sa.select(jobs_table).where(jobs_table.c.kind == "jobs.noop")).all()
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    done = [r for r in rows if r.state == "succeeded"]
    waits = [r.started_at - r.created_at for r in done]
    first = min(r.created_at for r in rows)
    last = max((r.finished_at or 0) for r in rows)
    by_user = {}
    for r in done:
        by_user.setdefault(r.user_name, []).append(r.started_at - r.created_at)
    workers = {}
    for r in done:
        workers[r.worker] = workers.get(r.worker, 0) + 1
    return {"system": "Gristmill queue (jobs.noop)", "jobs": jobs, "recorded": len(rows), "succeeded": len(done),
            "lost": jobs - len(done), "submit_errors": len(errors), "more_than_one_attempt": sum(r.attempt > 1 for r in rows),
            "submit_seconds": round(submitted, 2), "seconds": round(last - first, 2),
            "jobs_per_s": round(len(done) / (last - first), 2), "wait_p50": round(pct(waits, 50), 3),
            "wait_p99": round(pct(waits, 99), 3), "wait_max": round(max(waits, default=float("nan")), 3),
            "user_mean_wait_min_max": [round(min(statistics.mean(v) for v in by_user.values()), 2),
                                       round(max(statistics.mean(v) for v in by_user.values()), 2)],
            "run_p50": round(pct([r.finished_at - r.started_at for r in done], 50), 3),
            "by_worker": workers,
            "metrics_succeeded": next((line.split()[-1] for line in metrics.splitlines()
                                       if line.startswith('gristmill_jobs{kind="jobs.noop",state="succeeded"}')), None),
            "first_error": errors[0] if errors else None}


def _peer_app(broker: str):
    from celery import Celery

    app = Celery("peer", broker=broker, set_as_current=False)
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                    task_ignore_result=True, task_serializer="json", accept_content=["json"],
                    worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

    @app.task(name="peer.noop")
    def noop(sent_at: float) -> None:
        import redis

        started = time.time()
        redis.Redis.from_url(broker).rpush("peer:done", json.dumps([sent_at, started, time.time()]))

    return app


def peer_worker(broker: str, name: str, slots: int) -> None:
    app = _peer_app(broker)
    app.Worker(hostname=f"{name}@%h", queues=["peer"], concurrency=slots, pool="threads", loglevel="WARNING",
               without_gossip=True, without_mingle=True, without_heartbeat=True, quiet=True).start()


def celery_peer(root: Path, broker: str, jobs: int, users: int, slots: int) -> dict:
    import redis

    r = redis.Redis.from_url(broker)
    r.flushdb()
    env = {**os.environ}
    procs = [start([sys.executable, str(HERE), "--peer-worker", name, "--broker", broker, "--slots", str(slots)],
                   env, root / f"{name}.log") for name in ("peer-w1", "peer-w2")]
    try:
        app = _peer_app(broker)
        time.sleep(4)   # the workers connect (no readiness endpoint of their own)
        per_user = [jobs // users + (1 if i < jobs % users else 0) for i in range(users)]

        def send(count: int) -> None:
            for _ in range(count):
                app.send_task("peer.noop", args=[time.time()], queue="peer")

        threads = [threading.Thread(target=send, args=(n,)) for n in per_user]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.time() + max(300, jobs)
        while r.llen("peer:done") < jobs and time.time() < deadline:
            time.sleep(0.2)
        done = [json.loads(x) for x in r.lrange("peer:done", 0, -1)]
    finally:
        for proc in procs:
            stop(proc)
    waits = [started - sent for sent, started, _ in done]
    first, last = min(d[0] for d in done), max(d[2] for d in done)
    return {"system": "plain Celery tasks (peer)", "jobs": jobs, "recorded": len(done), "succeeded": len(done),
            "lost": jobs - len(done), "seconds": round(last - first, 2),
            "jobs_per_s": round(len(done) / (last - first), 2), "wait_p50": round(pct(waits, 50), 3),
            "wait_p99": round(pct(waits, 99), 3), "wait_max": round(max(waits), 3)}


# -- the cost of the queue for a training --------------------------------------------------------

def training_cost(team: Team, budget: int) -> dict:
    import numpy as np
    import pandas as pd
    import yaml

    from gristmill import pipeline
    from gristmill.config import metadata
    from gristmill.identity import store
    from gristmill.services import Context, invoke
    from gristmill.spec import parse_spec
    from gristmill.sql import connect, ident, literal

    spec = {"project": "costshop", "sources": [{"path": "/nonexistent/unused.csv"}],
            "entity": {"name": "user", "key": "user_id"},
            "features": [{"table": "profile", "timestamp": "updated"}],
            "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
            "training": {"budget_seconds": budget, "trainers": ["lightgbm"]}}
    local = Context.local(team.ws)
    token = invoke(local, "users.add", name="trainer")["token"]
    me = Context(team.ws, store.authenticate(metadata(team.ws), token))
    invoke(me, "projects.register", project="costshop", spec=yaml.safe_dump(spec))
    rng = np.random.default_rng(0)
    n = 5000
    ids = [f"u{i}" for i in range(n)]
    x = rng.normal(size=(n, 8))
    tables = {"profile": pd.DataFrame({"user_id": ids, **{f"f{j}": x[:, j] for j in range(8)},
                                       "updated": pd.Timestamp("2024-01-01")}),
              "labels": pd.DataFrame({"user_id": ids, "as_of": pd.Timestamp("2024-02-01"),
                                      "y": (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=n) > 0).astype(int)})}
    lake = team.ws.lake("costshop")
    lake.mkdir(parents=True, exist_ok=True)
    con = connect(team.ws.catalog)
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident('costshop')}")
        for name, frame in tables.items():
            path = lake / f"{name}.parquet"
            frame.to_parquet(path, index=False, coerce_timestamps="us")
            con.execute(f"CREATE OR REPLACE VIEW {ident('costshop')}.{ident(name)} AS "
                        f"SELECT * FROM read_parquet({literal(path)})")
    finally:
        con.close()
    parsed = parse_spec(spec, "costshop.yaml")
    pipeline.features_apply(team.ws, parsed)
    pipeline.features_dataset(team.ws, parsed)
    command = [str(BIN / "gristmill"), "train", "costshop", "--budget", str(budget), "--json"]
    began = time.time()
    terminal = subprocess.run(command, env=team.env, capture_output=True, text=True, timeout=budget * 5)
    terminal_s = time.time() - began
    if terminal.returncode:
        raise SystemExit(terminal.stderr[-2000:])
    url = team.server()
    team.worker("cost-w1", 2)
    began = time.time()
    queued = subprocess.run(command, env={**team.env, "GRISTMILL_URL": url, "GRISTMILL_TOKEN": token},
                            capture_output=True, text=True, timeout=budget * 5)
    queued_s = time.time() - began
    if queued.returncode:
        raise SystemExit(queued.stderr[-2000:])
    import httpx

    job = httpx.get(f"{url}/jobs", params={"kind": "models.train"}, headers={"Authorization": f"Bearer {token}"},
                    timeout=30).json()["jobs"][0]
    return {"budget": budget, "terminal_seconds": round(terminal_s, 1), "queued_seconds": round(queued_s, 1),
            "overhead_seconds": round(queued_s - terminal_s, 1),
            "overhead_pct": round(100 * (queued_s - terminal_s) / terminal_s, 1),
            "job_queue_wait": job["queue_wait_seconds"], "job_run_seconds": job["run_seconds"],
            "terminal_trials": json.loads(terminal.stdout).get("n_trials"),
            "queued_trials": json.loads(queued.stdout).get("n_trials")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gm-qbench"))
    parser.add_argument("--postgres", default="postgresql://root@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--peer-redis-db", type=int, default=14)
    parser.add_argument("--cost", action="store_true", help="the training-through-the-queue cost instead")
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--peer-worker", help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_worker:
        peer_worker(args.broker, args.peer_worker, args.slots)
        return
    import shutil

    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    load = os.getloadavg()
    team = Team(args.dir, args.postgres, args.redis, args.redis_db)
    try:
        if args.cost:
            rows = [training_cost(team, args.budget)]
        else:
            rows = [gristmill_queue(team, args.jobs, args.users, args.slots)]
            rows.append(celery_peer(args.dir, f"{args.redis}/{args.peer_redis_db}", args.jobs, args.users, args.slots))
    finally:
        team.close()
    report = {"machine": f"{os.cpu_count()} cores", "load_before": [round(x, 2) for x in load],
              "load_after": [round(x, 2) for x in os.getloadavg()], "rows": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['machine']}, load before {report['load_before']}, after {report['load_after']}")
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
