"""Dashboard page times (server side) with a project of 1,000 MLflow runs and 50 model versions.

    .venv/bin/python bench/dashboard_bench.py [--dir /tmp/gristmill-dbench] [--runs 1000]
        [--versions 50] [--requests 40] [--json]

1. A workspace with one user and one project; ``--runs`` real MLflow runs in the workspace's SQLite
   store (parents with nested trials, a cv metric, params and tags each, as a training logs them)
   and ``--versions`` registered model versions, written with MlflowClient's batch calls.
2. One real `gristmill server` (uvicorn, loopback); a signed-in dashboard session (httpx, the
   sign-in form with its CSRF token). ``--requests`` sequential GETs of the projects page
   ``/ui/`` and of the project's training page ``/ui/p/<p>/training`` (its charts read up to 1,000
   runs, its table shows 100); the figure is the server's own time from the ``Server-Timing``
   header (and the client's wall time beside it).
3. The peer, in the same run: ``mlflow server`` on the same SQLite store, timed from the client:
   ``POST /api/2.0/mlflow/runs/search`` of the experiment with ``max_results=1000`` (all the runs:
   what the training page reads) and ``100`` (one page, what `mlflow ui`'s experiment page asks
   for first).

Figures only: nothing is asserted. Client and servers share the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
PROJECT = "bench"
SPEC = f"""project: {PROJECT}
sources: [{{path: /nonexistent}}]
entity: {{name: customer, key: customer_id}}
features: [{{table: orders}}]
label: {{table: labels, target: y, timestamp: as_of}}
"""
TRAINERS = ("lightgbm", "xgboost", "catboost", "linear")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def make_store(ws, runs: int, versions: int) -> float:
    """``runs`` runs (one parent per 20) and ``versions`` model versions; returns the seconds taken."""
    from mlflow.entities import Metric, Param, RunTag

    from gristmill.config import mlflow_client
    from gristmill.training.train import configure_mlflow

    started = time.monotonic()
    exp = configure_mlflow(ws, PROJECT)
    client = mlflow_client(ws)
    client.create_registered_model(PROJECT)
    now, parent, made, parents = int(time.time() * 1000), None, 0, []
    while made < runs:
        if made % 20 == 0:
            parent = client.create_run(exp, run_name=f"train set-{made // 20}", start_time=now - (runs - made) * 1000)
            client.log_batch(parent.info.run_id, metrics=[Metric("holdout_roc_auc", 0.7 + (made % 97) / 1000, now, 0)],
                             params=[Param("budget_seconds", "60")])
            client.set_terminated(parent.info.run_id)
            parents.append(parent.info.run_id)
        else:
            trainer = TRAINERS[made % len(TRAINERS)]
            run = client.create_run(exp, run_name=f"trial {made} {trainer}", start_time=now - (runs - made) * 1000,
                                    tags={"mlflow.parentRunId": parent.info.run_id, "trainer": trainer})
            client.log_batch(run.info.run_id,
                             metrics=[Metric("cv_roc_auc", 0.6 + (made * 37 % 300) / 1000, now, 0),
                                      Metric("seconds", 1.5, now, 0)],
                             params=[Param("learning_rate", "0.05"), Param("num_leaves", "31")],
                             tags=[RunTag("optuna_trial", str(made))])
            client.set_terminated(run.info.run_id)
        made += 1
    for i in range(versions):
        run_id = parents[i % len(parents)]
        mv = client.create_model_version(PROJECT, f"runs:/{run_id}/model", run_id)
        client.set_model_version_tag(PROJECT, mv.version, "holdout_roc_auc", f"{0.7 + i / 1000:.4f}")
    client.set_registered_model_alias(PROJECT, "champion", str(versions))
    return time.monotonic() - started


def sign_in(base: str, name: str, password: str):
    import httpx

    c = httpx.Client(base_url=base, timeout=60)
    page = c.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    done = c.post("/ui/login", data={"csrf": csrf, "name": name, "password": password}, follow_redirects=False)
    assert done.status_code == 303 and "gm_session" in c.cookies, done.text[:300]
    return c


def time_pages(c, path: str, n: int) -> dict:
    server, wall = [], []
    c.get(path)  # warm: imports, caches
    for _ in range(n):
        started = time.perf_counter()
        r = c.get(path)
        wall.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        server.append(float(r.headers["server-timing"].split("dur=")[1]))
    return {"path": path, "n": n, "server_p50_ms": pct(server, 0.5), "server_p95_ms": pct(server, 0.95),
            "wall_p50_ms": pct(wall, 0.5), "wall_p95_ms": pct(wall, 0.95), "bytes": len(r.content)}


def time_mlflow(base: str, experiment_id: str, max_results: int, n: int) -> dict:
    import httpx

    wall, got = [], 0
    with httpx.Client(base_url=base, timeout=60) as c:
        def fetch():
            runs, token = [], None
            while True:   # the REST API pages at 1000 at most; follow the token as a client does
                body = {"experiment_ids": [experiment_id], "max_results": max_results,
                        "order_by": ["attributes.start_time DESC"]}
                if token:
                    body["page_token"] = token
                r = c.post("/api/2.0/mlflow/runs/search", json=body)
                r.raise_for_status()
                data = r.json()
                runs += data.get("runs", [])
                token = data.get("next_page_token")
                if not token or len(runs) >= max_results:
                    return runs
        fetch()
        for _ in range(n):
            started = time.perf_counter()
            got = len(fetch())
            wall.append((time.perf_counter() - started) * 1000)
    return {"max_results": max_results, "runs": got, "n": n, "wall_p50_ms": pct(wall, 0.5),
            "wall_p95_ms": pct(wall, 0.95)}


def wait_ready(url: str, proc, log: Path, seconds: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer in {seconds:.0f} s:\n{log.read_text()[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="/tmp/gristmill-dbench")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--versions", type=int, default=50)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for k, v in {"DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}.items():
        os.environ.setdefault(k, v)
    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = {"GRISTMILL_WORKSPACE": str(root / "ws"), "GRISTMILL_FEATURE_REPO": str(root / "feature_repo"),
           "GRISTMILL_BENTOS": str(root / "bentos"), "GRISTMILL_CONFIG_DIR": str(root / "config")}
    os.environ.update(env)
    from gristmill.services import Context, invoke
    from gristmill.workspace import Workspace

    ws = Workspace.resolve().ensure()
    local = Context.local(ws)
    invoke(local, "users.add", name="ann", admin=False, password="ann-password-bench")
    from gristmill.config import metadata
    from gristmill.identity.store import authenticate

    token = invoke(local, "auth.login", name="ann", password="ann-password-bench", expires="1h")["token"]
    invoke(Context(ws, authenticate(metadata(ws), token)), "projects.register", project=PROJECT, spec=SPEC)
    made_in = make_store(ws, args.runs, args.versions)

    procs = []
    try:
        port = _port()
        log = root / "server.log"
        server = subprocess.Popen([str(BIN / "gristmill"), "server", "--port", str(port)], cwd=root,
                                  env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        procs.append(server)
        mport = _port()
        mlog = root / "mlflow.log"
        mlflow_server = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", ws.mlflow_uri, "--host", "127.0.0.1",
             "--port", str(mport), "--workers", "1"], cwd=root, env={**os.environ, **env},
            stdout=mlog.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(mlflow_server)
        base, mbase = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mport}"
        wait_ready(f"{base}/readyz", server, log)
        wait_ready(f"{mbase}/health", mlflow_server, mlog, 180)
        c = sign_in(base, "ann", "ann-password-bench")
        from gristmill.config import mlflow_client
        from gristmill.training.train import experiment_name

        exp_id = mlflow_client(ws).get_experiment_by_name(experiment_name(PROJECT)).experiment_id
        ours = [time_pages(c, "/ui/", args.requests), time_pages(c, f"/ui/p/{PROJECT}/training", args.requests)]
        peer = [time_mlflow(mbase, exp_id, 1000, args.requests), time_mlflow(mbase, exp_id, 100, args.requests)]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 15)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, 9)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    result = {"runs": args.runs, "versions": args.versions, "store_seconds": round(made_in, 1), "ours": ours,
              "peer_mlflow_rest": peer, "machine": f"{platform.machine()} {os.cpu_count()} cores, "
              f"Python {platform.python_version()}", "uptime": load}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.runs} runs + {args.versions} versions written in {made_in:.1f} s; {result['machine']}; {load}")
    print(f"{'what':58} {'p50 ms':>8} {'p95 ms':>8}")
    for row in ours:
        print(f"{'gristmill dashboard ' + row['path'] + ' (server)':58} {row['server_p50_ms']:8.1f} {row['server_p95_ms']:8.1f}")
        print(f"{'  same, client wall time':58} {row['wall_p50_ms']:8.1f} {row['wall_p95_ms']:8.1f}")
    for row in peer:
        what = f"peer: mlflow server runs/search max_results={row['max_results']} ({row['runs']} runs)"
        print(f"{what:58} {row['wall_p50_ms']:8.1f} {row['wall_p95_ms']:8.1f}")


if __name__ == "__main__":
    main()
