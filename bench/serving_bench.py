"""Serving figures: a real `bentoml serve` of a Gristmill bento under load from wrk on loopback.

    .venv/bin/python bench/serving_bench.py [--dir /tmp/gristmill-sbench] [--stores sqlite,redis]
        [--clients 1,16,64] [--seconds 10] [--gateway-projects 100] [--json]

Needs ``wrk`` (Debian: ``apt-get install wrk``); Redis on 127.0.0.1:6379 for the Redis figures
(db 13, flushed before use).

1. Builds a project through Gristmill's own stages: 5,000 entities x 50 numeric features (one CSV),
   binary labels, LightGBM for a few seconds; `gristmill deploy` with ``--workers`` service workers;
   one workspace per online store (SQLite embedded, Redis as in team mode via GRISTMILL_ONLINE_STORE);
   a project-scoped viewer token (`gristmill tokens create`) that every request carries.
2. Starts `bentoml serve` of the project's bento and drives it with wrk (one thread, ``--clients``
   connections, ``--seconds`` each after a warm-up), every request a random entity:
   ``/predict_entity`` (no batching), ``/predict_batched`` (BentoML adaptive batching, one id per
   request) and ``/predict_entities`` with ``--batch`` ids per request (predictions/s = that many
   times req/s). Throughput, p50 and p99 as wrk measures them; any non-2xx answer is counted.
   Peers in the same run, same wrk settings: the HTTP floor (a BentoML service of the same shape,
   same workers, that answers a constant without looking anything up) and Feast's own `feast serve`
   of the same 50 features (``/get-online-features``, same workers).
3. Gateway: ``--gateway-projects`` more projects in one workspace (each its own labels and model,
   features shared from the first project), `gristmill serve --all`; memory per loaded model, cold
   (first request of a project) and warm latency, measured by a Python client.

Client and server share the same 2 cores, so the client's own CPU is part of every figure.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ENTITIES, FEATURES = 5000, 50
WORKERS = 2  # --workers
REDIS_URL = "redis://127.0.0.1:6379/13"

LUA = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  local picked = {}
  for i = 1, %(count)d do picked[i] = '"' .. ids[math.random(#ids)] .. '"' end
  return wrk.format(nil, nil, nil, string.format(%(body)s, table.concat(picked, ",")))
end
"""

#: The HTTP floor: the bento's shape (one id in, the same answer's fields out), no lookup, no model.
FLOOR = """import bentoml
from typing import Any


@bentoml.service(name="floor", workers=%(workers)d, http={"host": "127.0.0.1"})
class Floor:
    @bentoml.api
    def predict_entity(self, customer_id: str) -> dict[str, Any]:
        return {"customer_id": customer_id, "prediction": "no", "probabilities": {"no": 0.5, "yes": 0.5},
                "model_version": "1", "variant": "champion"}
"""


# ---------------------------------------------------------------- the project
def make_data(folder: Path, entities: int, seed: int = 3) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    x = rng.normal(size=(entities, FEATURES)).round(4)
    ids = [f"c{i:06d}" for i in range(entities)]
    profiles = pd.DataFrame(x, columns=[f"f{j:02d}" for j in range(FEATURES)])
    profiles.insert(0, "updated_at", "2024-01-01T00:00:00Z")
    profiles.insert(0, "customer_id", ids)
    profiles.to_csv(folder / "profiles.csv", index=False)
    score = x[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3]) + rng.normal(scale=0.5, size=entities)
    pd.DataFrame({"customer_id": ids, "as_of": "2024-06-01T00:00:00Z",
                  "churned": np.where(score > 0, "yes", "no")}).to_csv(folder / "labels.csv", index=False)


def spec(project: str, data: Path, reuse_from: str | None = None, labels: str = "labels.csv") -> dict:
    features = [{"table": "profiles", "project": reuse_from}] if reuse_from else \
        [{"table": "profiles", "timestamp": "updated_at"}]
    sources = [{"path": str(data / labels), "name": "labels"}]
    if not reuse_from:
        sources.insert(0, {"path": str(data / "profiles.csv"), "name": "profiles"})
    return {"project": project, "sources": sources, "entity": {"name": "customer", "key": "customer_id"},
            "features": features, "label": {"table": "labels", "target": "churned", "timestamp": "as_of"},
            "training": {"budget_seconds": 8, "trainers": ["lightgbm"], "folds": 2},
            "serving": {"workers": WORKERS}}


def build(env: dict, root: Path, project: str, body: dict, budget: int) -> dict:
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{project}.yaml"
    path.write_text(yaml.safe_dump(body))
    out = subprocess.run([str(BIN / "gristmill"), "run", str(path), "--budget", str(budget), "--json"],
                         env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"gristmill run {project} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def workspace_env(root: Path, online: str | None) -> dict:
    env = {**os.environ, "GRISTMILL_WORKSPACE": str(root / "ws"), "GRISTMILL_FEATURE_REPO": str(root / "feature_repo"),
           "GRISTMILL_BENTOS": str(root / "bentos")}
    env.pop("GRISTMILL_ONLINE_STORE", None)
    if online:
        env["GRISTMILL_ONLINE_STORE"] = online
    return env


# ---------------------------------------------------------------- servers and load
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(env: dict, project: str | None) -> str:
    """A viewer token on ``project`` (None: a token of the workspace's local user, for the gateway)."""
    scope = ["--project", project, "--role", "viewer"] if project else []
    out = subprocess.run([str(BIN / "gristmill"), "tokens", "create", *scope, "--label", "bench", "--expires", "1d",
                          "--json"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"gristmill tokens create failed: {out.stderr[-500:]}")
    return json.loads(out.stdout)["token"]


def start(args: list[str], cwd: Path | None, env: dict, port: int, probe: str = "/readyz") -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{args} exited with {proc.returncode}")
        time.sleep(1)
    stop(proc)
    raise SystemExit(f"{args} not ready in 180 s")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, 9)


def wrk(url: str, script: Path, clients: int, seconds: int) -> dict:
    out = subprocess.run(["wrk", "-t", "1", "-c", str(clients), "-d", f"{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout

    def ms(label: str) -> float | None:
        found = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not found:
            return None
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {"clients": clients, "rps": float(rps.group(1)) if rps else None, "p50_ms": ms("50"),
            "p99_ms": ms("99"), "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else None}


def load(args, root: Path, name: str, url: str, body: str, secret: str, count: int = 1,
         clients: list[int] | None = None) -> list[dict]:
    """wrk against ``url`` at each client count; ``body`` is a Lua format string of the ids."""
    script = root / f"{name}.lua"
    script.write_text(LUA % {"ids": root / "ids.txt", "body": body, "token": secret, "count": count})
    wrk(url, script, 4, 3)  # warm-up
    rows = []
    for c in clients or args.clients:
        row = wrk(url, script, c, args.seconds) | {"endpoint": name, "ids_per_request": count}
        row["predictions_per_s"] = row["rps"] and round(row["rps"] * count)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def bench_service(args, root: Path, store: str, online: str | None) -> dict:
    env = workspace_env(root, online)
    summary = build(env, root, "sbench", spec("sbench", root.parent / "data"), args.budget)
    (root / "ids.txt").write_text("\n".join(f"c{i:06d}" for i in range(ENTITIES)) + "\n")
    secret = token(env, "sbench")
    rows = []
    port = free_port()
    proc = start([str(BIN / "bentoml"), "serve", "service:Sbench", "--port", str(port)], Path(summary["bento"]),
                 env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        rows += load(args, root, "predict_entity", f"{base}/predict_entity", "'{\"customer_id\": %s}'", secret)
        rows += load(args, root, "predict_batched", f"{base}/predict_batched", "'{\"ids\": [%s]}'", secret)
        rows += load(args, root, "predict_entities", f"{base}/predict_entities", "'{\"ids\": [%s]}'", secret,
                     count=args.batch, clients=[max(args.clients[-1] // 4, 1)])
    finally:
        stop(proc)
    # the peers, one at a time on the same cores
    floor = root / "floor"
    floor.mkdir(exist_ok=True)
    (floor / "floor_service.py").write_text(FLOOR % {"workers": WORKERS})
    port = free_port()
    proc = start([str(BIN / "bentoml"), "serve", "floor_service:Floor", "--port", str(port)], floor, env, port)
    try:
        rows += load(args, root, "floor (constant)", f"http://127.0.0.1:{port}/predict_entity",
                     "'{\"customer_id\": %s}'", secret)
    finally:
        stop(proc)
    port = free_port()
    proc = start([str(BIN / "feast"), "serve", "-p", str(port), "-w", str(WORKERS), "--no-access-log"],
                 root / "feature_repo", env, port, probe="/health")
    try:
        rows += load(args, root, "feast serve", f"http://127.0.0.1:{port}/get-online-features",
                     "'{\"feature_service\": \"sbench\", \"entities\": {\"customer_id\": [%s]}}'", secret)
    finally:
        stop(proc)
    for row in rows:
        row["store"] = store
    return {"store": store, "rows": rows, "holdout": summary["train"].get("holdout_score")}


def bench_gateway(args, root: Path) -> dict:
    """Projects share the first project's features; each has its own labels and model."""
    import numpy as np
    import pandas as pd
    import yaml

    env = workspace_env(root, None)
    data = root.parent / "data"
    names = [f"g{n:03d}" for n in range(args.gateway_projects - 1)]
    if args.reuse and (root / "ws" / "projects" / names[-1]).is_dir():
        return measure_gateway(env, ["gbase"] + names, None)
    build(env, root, "gbase", spec("gbase", data), args.budget)
    rng = np.random.default_rng(11)
    labels = pd.read_csv(data / "labels.csv")
    started = time.perf_counter()
    for name in names:
        part = labels.sample(600, random_state=int(rng.integers(1 << 30)))
        part.to_csv(data / f"labels_{name}.csv", index=False)
        body = spec(name, data, reuse_from="gbase", labels=f"labels_{name}.csv")
        body["training"] |= {"budget_seconds": 5, "max_trials": 1}
        (root / f"{name}.yaml").write_text(yaml.safe_dump(body))
    # one process builds them all (the stages in-process: no start-up cost per project)
    out = subprocess.run([sys.executable, __file__, "--build-small", str(root), *names], env=env,
                         capture_output=True, text=True, timeout=7200)
    if out.returncode != 0:
        raise SystemExit(f"building the gateway's projects failed:\n{out.stderr[-3000:]}")
    return measure_gateway(env, ["gbase"] + names, time.perf_counter() - started)


def measure_gateway(env: dict, projects: list[str], build_seconds: float | None) -> dict:
    """Cold requests (each project's first), then warm ones, through `gristmill serve --all`."""
    import httpx

    port = free_port()
    proc = start([str(BIN / "gristmill"), "serve", "--all", "--port", str(port)], None, env, port)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token(env, None)}"}
    try:
        import psutil

        def rss() -> float:
            procs = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
            return sum(p.memory_info().rss for p in procs) / 2**20

        with httpx.Client(timeout=120, headers=headers) as client:
            before = rss()
            cold, warm = [], []
            for project in projects:
                t = time.perf_counter()
                reply = client.post(f"{base}/predict_entity", json={"project": project, "id": "c000001"})
                cold.append((time.perf_counter() - t) * 1000)
                assert reply.status_code == 200, reply.text
            after = rss()
            for _ in range(5):
                for project in projects:
                    t = time.perf_counter()
                    client.post(f"{base}/predict_entity", json={"project": project, "id": "c000002"})
                    warm.append((time.perf_counter() - t) * 1000)
            state = client.post(f"{base}/projects", json={}).json()
    finally:
        stop(proc)
    per_model = [p["megabytes"] for p in state["loaded"]]
    return {"projects": len(projects), "build_seconds": build_seconds and round(build_seconds, 1),
            "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
            "mb_per_model_rss": round((after - before) / len(projects), 2),
            "mb_per_model_accounted_median": statistics.median(per_model) if per_model else None,
            "cold_ms_p50": round(statistics.median(cold), 1), "cold_ms_max": round(max(cold), 1),
            "warm_ms_p50": round(statistics.median(warm), 2),
            "warm_ms_p99": round(sorted(warm)[int(0.99 * (len(warm) - 1))], 2),
            "loaded": len(state["loaded"]), "evictions": state["evictions"]}


def build_small(root: Path, names: list[str]) -> None:
    """Register, ingest, apply, cut a training set and train each small project (no materialize:
    they reuse the base project's features, already online)."""
    from gristmill import pipeline
    from gristmill.workspace import Workspace

    ws = Workspace.resolve()
    for n, name in enumerate(names):
        t = time.perf_counter()
        spec_ = pipeline.register(ws, root / f"{name}.yaml")
        pipeline.ingest(ws, name, spec_)
        pipeline.features_apply(ws, spec_)
        dataset_id, _ = pipeline.features_dataset(ws, spec_)
        pipeline.train(ws, spec_, budget=5, dataset_id=dataset_id)
        print(f"{n + 1}/{len(names)} {name}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)


def machine() -> str:
    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return f"{platform.machine()} {cpus} cores, {mem:.0f} GB RAM, Python {platform.python_version()}, load {load:.1f}"


def flush_redis() -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=13).flushdb()


def main() -> None:
    if sys.argv[1:2] == ["--build-small"]:
        build_small(Path(sys.argv[2]), sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "gristmill-sbench"))
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100, help="Ids per /predict_entities request.")
    parser.add_argument("--workers", type=int, default=2, help="Service workers (bento, floor, feast serve).")
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--gateway-projects", type=int, default=100)
    parser.add_argument("--reuse", action="store_true",
                        help="Keep --dir's data and projects from an earlier run (gateway part).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    global WORKERS
    WORKERS = args.workers
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed for the load: apt-get install wrk")
    root = Path(args.dir)
    if not (args.reuse and (root / "data" / "labels.csv").is_file()):
        shutil.rmtree(root, ignore_errors=True)
        make_data(root / "data", ENTITIES)
    results = {"machine": machine(), "services": [], "gateway": None}
    for store in [s for s in args.stores.split(",") if s]:
        online = None
        if store == "redis":
            flush_redis()
            online = REDIS_URL
        results["services"].append(bench_service(args, root / store, store, online))
    if args.gateway_projects > 0:
        results["gateway"] = bench_gateway(args, root / "gateway")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {results['machine']}")
    print(f"workers: {WORKERS}")
    print(f"{'store':7} {'endpoint':18} {'ids':>4} {'clients':>7} {'req/s':>8} {'pred/s':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'non-2xx':>8}")
    for service in results["services"]:
        for r in service["rows"]:
            print(f"{r['store']:7} {r['endpoint']:18} {r['ids_per_request']:>4} {r['clients']:>7} {r['rps'] or 0:>8.0f} "
                  f"{r['predictions_per_s'] or 0:>8} {r['p50_ms'] or 0:>8.2f} {r['p99_ms'] or 0:>8.2f} "
                  f"{r['non_2xx']:>8}")
    if results["gateway"]:
        print("gateway:", json.dumps(results["gateway"]))


if __name__ == "__main__":
    main()
