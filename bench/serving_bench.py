"""Serving figures: a real `bentoml serve` of a Gristmill bento under load from wrk on loopback.

    .venv/bin/python bench/serving_bench.py [--dir /tmp/gristmill-sbench] [--stores sqlite,redis]
        [--clients 1,16,64] [--seconds 10] [--gateway-projects 100] [--gateway-trained 100]
        [--gateway-memory-mb MB] [--json]

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
3. Gateway: ``--gateway-projects`` projects in one workspace, served by `gristmill serve --all`
   (``--gateway-memory-mb`` sets its GRISTMILL_GATEWAY_MEMORY_MB; default the gateway's 2,048).
   The first, ``gbase``, is built like the project above (`gristmill run`, its 50 features
   materialized online). Every other one is a real registered project whose spec reuses gbase's
   feature table (``features: [{table: profiles, project: gbase}]``) and has its own 600 labels
   (a sample of gbase's), built in one process (:func:`build_small`): `register` and `ingest`,
   its feature tables and generated Feast definitions, then a single ``feast apply`` of all of
   them (not one per project: each apply re-imports Feast and re-reads every definition, 7-9 s a
   project at ten projects and growing). The first ``--gateway-trained`` (default 100) then get a
   training set and `train` (budget 5 s, one trial, through the promotion gate); each of the
   others gets version 1 of its own registered model as MLflow's ``copy_model_version`` of a
   trained one's champion (round robin; source ``models:/<trained>/<version>``, tag
   ``copied_from``), made its champion by `gristmill models promote`'s code
   (:func:`gristmill.training.registry.promote`). So every project has its own champion in the
   registry, loaded through the gateway's normal path (alias, ``models:/`` source, pyfunc load,
   its own feature service): 101 distinct fitted models behind 1,000 champions, each loaded as
   its own model object. On 2 cores the 999 small projects of a 1,000-project run took 435 s
   (define 182 s, the one apply 40 s, 100 trainings 157 s, 899 copies 50 s) where building each
   with its own apply was measured at ~13 s a project (~3.6 h); ``--gateway-trained 1000``
   trains them all, an estimated ~30-35 min (1.4-1.7 s a training, untested at that size).
   The build's phases are in ``build_phase_seconds``. Measured by a Python client: RSS before,
   after the first load (which pays the model libraries' imports) and after; memory per loaded
   model; cold latency (each project's first request, in order gbase, trained, copied: the split
   trained/copied is also early/late); warm latency (five rounds over every project in the same
   order); loaded models and evictions, after the cold pass and at the end.

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
    if args.gateway_memory_mb:
        env["GRISTMILL_GATEWAY_MEMORY_MB"] = str(args.gateway_memory_mb)
    data = root.parent / "data"
    names = [f"g{n:03d}" for n in range(args.gateway_projects - 1)]
    trained = max(1, min(args.gateway_trained, len(names)))
    if args.reuse and (root / "ws" / "projects" / names[-1]).is_dir():
        return measure_gateway(env, ["gbase"] + names, None, frozenset(names[trained:]))
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
    log = root / "build_small.log"  # progress, to follow with tail -f
    with open(log, "w") as err:
        out = subprocess.run([sys.executable, __file__, "--build-small", str(root), str(trained), *names],
                             check=False, env=env, stdout=subprocess.PIPE, stderr=err, text=True, timeout=7200)
    if out.returncode != 0:
        raise SystemExit(f"building the gateway's projects failed:\n{log.read_text()[-3000:]}")
    phases = json.loads(out.stdout.strip().splitlines()[-1])
    built = time.perf_counter() - started
    return measure_gateway(env, ["gbase"] + names, built, frozenset(names[trained:])) | {
        "small_trained": trained, "small_copied": len(names) - trained, "build_phase_seconds": phases}


def measure_gateway(env: dict, projects: list[str], build_seconds: float | None,
                    copied: frozenset[str] = frozenset()) -> dict:
    """Cold requests (each project's first, in order), then five warm rounds over every project in
    the same order, through `gristmill serve --all`. With the gateway's memory budget below what
    every model needs, least-recently-used eviction plus this cyclic order makes warm requests
    cold again: ``evictions`` (after the cold pass and in all) and ``warm_non_2xx`` say so."""
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
            cold, warm, warm_bad = [], [], 0
            for n, project in enumerate(projects):
                t = time.perf_counter()
                reply = client.post(f"{base}/predict_entity", json={"project": project, "id": "c000001"})
                cold.append((time.perf_counter() - t) * 1000)
                assert reply.status_code == 200, reply.text
                if n == 0:
                    first = rss()  # the first load also pays the model libraries' imports
            after = rss()
            state_cold = client.post(f"{base}/projects", json={}).json()
            for _ in range(5):
                for project in projects:
                    t = time.perf_counter()
                    reply = client.post(f"{base}/predict_entity", json={"project": project, "id": "c000002"})
                    warm.append((time.perf_counter() - t) * 1000)
                    warm_bad += reply.status_code != 200
            after_warm = rss()
            state = client.post(f"{base}/projects", json={}).json()
    finally:
        stop(proc)
    per_model = [p["megabytes"] for p in state_cold["loaded"]]
    tenth = max(len(cold) // 10, 1)

    def p50(values: list[float]) -> float | None:
        return round(statistics.median(values), 1) if values else None

    return {"projects": len(projects), "build_seconds": build_seconds and round(build_seconds, 1),
            "memory_budget_mb": state["memory_budget_mb"],
            "rss_before_mb": round(before, 1), "rss_after_first_mb": round(first, 1),
            "rss_after_mb": round(after, 1), "rss_after_warm_mb": round(after_warm, 1),
            "mb_per_model_rss": round((after - before) / len(projects), 2),
            "mb_per_model_rss_after_first": round((after - first) / max(len(projects) - 1, 1), 2),
            "mb_per_model_accounted_median": statistics.median(per_model) if per_model else None,
            "memory_used_mb_after_cold": state_cold["memory_used_mb"],
            "cold_ms_p50": round(statistics.median(cold), 1), "cold_ms_max": round(max(cold), 1),
            "cold_ms_p90": round(sorted(cold)[int(0.9 * (len(cold) - 1))], 1),
            "cold_ms_p50_first_tenth": p50(cold[:tenth]), "cold_ms_p50_last_tenth": p50(cold[-tenth:]),
            "cold_ms_p50_trained": p50([c for c, p in zip(cold, projects) if p not in copied]),
            "cold_ms_p50_copied": p50([c for c, p in zip(cold, projects) if p in copied]),
            "warm_ms_p50": round(statistics.median(warm), 2),
            "warm_ms_p99": round(sorted(warm)[int(0.99 * (len(warm) - 1))], 2),
            "warm_non_2xx": warm_bad,
            "loaded_after_cold": len(state_cold["loaded"]), "evictions_after_cold": state_cold["evictions"],
            "loaded": len(state["loaded"]), "evictions": state["evictions"]}


def build_small(root: Path, names: list[str], trained: int) -> dict:
    """Build the small projects in this one process; returns seconds per phase (and per project).

    1. every project: ``register``, ``ingest`` (its labels) and its feature tables and generated
       Feast definitions (what ``features_apply`` writes), then one ``feast apply`` for all of them;
    2. the first ``trained``: a training set (``features_dataset``) and ``train`` (budget 5 s, one
       trial) through the promotion gate: each its own champion;
    3. the rest: MLflow's ``copy_model_version`` of trained project ``n % trained``'s champion as
       version 1 of the project's own registered model (source ``models:/<trained>/<version>``,
       tagged ``copied_from``), made champion by :func:`gristmill.training.registry.promote`.
    """
    from gristmill import pipeline
    from gristmill.config import mlflow_client
    from gristmill.features.repo import write_repo
    from gristmill.features.store import feast_apply
    from gristmill.features.tables import build_feature_tables
    from gristmill.training import registry
    from gristmill.training.train import configure_mlflow
    from gristmill.workspace import Workspace

    ws = Workspace.resolve()
    seconds: dict[str, float] = {}
    began = time.perf_counter()

    def progress(what: str) -> None:
        print(f"[{time.perf_counter() - began:7.1f} s] {what}", file=sys.stderr, flush=True)

    def timed(phase: str, started: float) -> None:
        seconds[phase] = seconds.get(phase, 0.0) + time.perf_counter() - started

    specs = {}
    for n, name in enumerate(names):
        t = time.perf_counter()
        specs[name] = pipeline.register(ws, root / f"{name}.yaml")
        pipeline.ingest(ws, name, specs[name])
        timed("register_ingest", t)
        t = time.perf_counter()
        write_repo(ws, build_feature_tables(ws, specs[name]))
        timed("feature_tables", t)
        if (n + 1) % 100 == 0:
            progress(f"defined {n + 1}/{len(names)}")
    t = time.perf_counter()
    feast_apply(ws)  # one apply of every project's definitions
    timed("feast_apply", t)
    progress("feast apply")
    for n, name in enumerate(names[:trained]):
        t = time.perf_counter()
        dataset_id, _ = pipeline.features_dataset(ws, specs[name])
        timed("features_dataset", t)
        t = time.perf_counter()
        pipeline.train(ws, specs[name], budget=5, dataset_id=dataset_id)
        timed("train", t)
        progress(f"trained {n + 1}/{trained} {name}")
    if names[trained:]:
        configure_mlflow(ws)  # models:/ sources resolve through the process-wide registry URI
        client = mlflow_client(ws)
        champions = {s: registry.champion_version(ws, s) for s in names[:trained]}
        for n, name in enumerate(names[trained:]):
            t = time.perf_counter()
            source = names[n % trained]
            copy = client.copy_model_version(f"models:/{source}/{champions[source]}", name)
            registry.tag_version(ws, name, str(copy.version), {"copied_from": f"{source}/{champions[source]}"})
            registry.promote(ws, name, str(copy.version))
            timed("copy_champion", t)
            if (n + 1) % 100 == 0:
                progress(f"copied {n + 1}/{len(names) - trained}")
    return {k: round(v, 1) for k, v in seconds.items()}


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
        print(json.dumps(build_small(Path(sys.argv[2]), sys.argv[4:], int(sys.argv[3]))))
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
    parser.add_argument("--gateway-trained", type=int, default=100,
                        help="Small projects trained (the rest serve a registry copy of one of theirs).")
    parser.add_argument("--gateway-memory-mb", type=int, default=None,
                        help="GRISTMILL_GATEWAY_MEMORY_MB for `serve --all` (default: the gateway's own).")
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
