"""Team-server figures: the access check itself, and a read route of a real `gristmill server`.

    .venv/bin/python bench/api_bench.py [--dir /tmp/gristmill-abench] [--clients 1,16]
        [--requests 2000] [--metadata postgresql://root@127.0.0.1:5432/postgres] [--json]

1. A workspace with 8 users and 80 projects (each user owns 10, shares 2 with each neighbour).
2. The check in-process: ``authenticate`` (token -> principal) + ``authorize`` (principal, action,
   project -> role), the work every API route, bento and gateway request does first; p50 and p99
   over ``--requests`` calls, alone and from 16 threads at once.
3. What the check adds to a bento prediction: the serving guard (``gristmill.serving.guard``, the
   middleware in front of every bento and the gateway) around an ASGI app that answers at once,
   against the same app bare (the peer), called through httpx's ASGI transport: with the guard's
   2 s cache warm (what a client sending requests sees) and with the cache off (every request
   reads the metadata database).
4. A real `gristmill server` (one uvicorn process) on loopback: ``GET /projects/{p}/members`` (a
   read route: the check, then a metadata query) and, as the peer in the same run, ``GET /healthz``
   (no check, no query: the HTTP floor of the same server), at each ``--clients`` count; requests
   per second, p50 and p99 from a Python client (httpx, one connection per client thread).

Client and server share the same cores, so the client's CPU is part of every figure. With
``--metadata`` the metadata lives in that PostgreSQL (a fresh database, dropped after).
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
SPEC = """project: {project}
sources: [{{path: /nonexistent}}]
entity: {{name: customer, key: customer_id}}
features: [{{table: orders}}]
label: {{table: labels, target: y, timestamp: as_of}}
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def setup(root: Path) -> dict:
    os.environ["GRISTMILL_WORKSPACE"] = str(root / "ws")
    from gristmill.services import Context, invoke
    from gristmill.workspace import Workspace

    ws = Workspace.resolve().ensure()
    local = Context.local(ws)
    users = [f"user{i}" for i in range(8)]
    tokens = {u: invoke(local, "users.add", name=u)["token"] for u in users}
    for i, user in enumerate(users):
        from gristmill.identity.store import authenticate
        from gristmill.config import metadata

        ctx = Context(ws, authenticate(metadata(ws), tokens[user]))
        for j in range(10):
            project = f"p{i}_{j}"
            invoke(ctx, "projects.register", project=project, spec=SPEC.format(project=project))
            if j < 2:
                invoke(ctx, "projects.share", project=project, user=users[(i + 1) % 8], role="viewer")
    return {"ws": ws, "tokens": tokens}


def check_figures(ws, tokens: dict, n: int) -> list[dict]:
    from gristmill.config import metadata
    from gristmill.identity import Action, authorize
    from gristmill.identity.store import authenticate

    md = metadata(ws)
    token = tokens["user1"]

    def once() -> float:
        started = time.perf_counter()
        authorize(md, authenticate(md, token), Action.read, "p0_0")  # a shared project: a grant lookup
        return time.perf_counter() - started

    for _ in range(100):
        once()
    rows = []
    for threads in (1, 16):
        times: list[float] = []
        lock = threading.Lock()

        def work(count: int) -> None:
            mine = [once() for _ in range(count)]
            with lock:
                times.extend(mine)

        started = time.perf_counter()
        pool = [threading.Thread(target=work, args=(n // threads,)) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        wall = time.perf_counter() - started
        rows.append({"what": "access check (authenticate + authorize)", "clients": threads,
                     "calls_per_s": round(len(times) / wall), "p50_ms": round(pct(times, 0.5) * 1000, 3),
                     "p99_ms": round(pct(times, 0.99) * 1000, 3)})
    return rows


def guard_figures(ws, token: str, n: int) -> list[dict]:
    import asyncio

    import httpx

    from gristmill.serving.guard import Access, RequestGuard

    async def bare(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    apps = {"no guard (the peer)": bare,
            "guard, cache warm": RequestGuard(bare, project="p0_0", access=Access("p0_0", ws=ws)),
            "guard, no cache": RequestGuard(bare, project="p0_0", access=Access("p0_0", ws=ws, ttl=0))}

    async def run(app) -> list[float]:
        times = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bento",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            for i in range(n + 50):
                started = time.perf_counter()
                r = await client.post("/predict_entity", json={"customer_id": "a"})
                if i >= 50:
                    times.append(time.perf_counter() - started)
                assert r.status_code == 200, r.text
        return times

    rows = []
    for label, app in apps.items():
        times = asyncio.run(run(app))
        rows.append({"what": f"bento request, {label}", "clients": 1, "calls_per_s": round(len(times) / sum(times)),
                     "p50_ms": round(pct(times, 0.5) * 1000, 3), "p99_ms": round(pct(times, 0.99) * 1000, 3)})
    return rows


def http_figures(base: str, token: str, clients: list[int], n: int) -> list[dict]:
    import httpx

    rows = []
    for path, label in (("/healthz", "GET /healthz (no check: the HTTP floor)"),
                        ("/projects/p0_0/members", "GET /projects/{p}/members (check + query)")):
        for count in clients:
            times: list[float] = []
            errors = [0]
            lock = threading.Lock()

            def work(k: int) -> None:
                mine = []
                with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
                    for _ in range(k):
                        started = time.perf_counter()
                        r = c.get(path)
                        mine.append(time.perf_counter() - started)
                        if r.status_code != 200:
                            with lock:
                                errors[0] += 1
                with lock:
                    times.extend(mine)

            work(50)  # warm-up
            times.clear()
            started = time.perf_counter()
            pool = [threading.Thread(target=work, args=(max(1, n // count),)) for _ in range(count)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            wall = time.perf_counter() - started
            rows.append({"what": label, "clients": count, "calls_per_s": round(len(times) / wall),
                         "p50_ms": round(pct(times, 0.5) * 1000, 2), "p99_ms": round(pct(times, 0.99) * 1000, 2),
                         "non_200": errors[0]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--metadata", default=None, help="PostgreSQL URL of a server to make a database on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="gristmill-abench-"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    database = None
    if args.metadata:
        import psycopg

        database = f"gristmill_bench_{secrets.token_hex(4)}"
        with psycopg.connect(args.metadata, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{database}"')
        os.environ["GRISTMILL_METADATA_URL"] = args.metadata.rsplit("/", 1)[0] + f"/{database}"
    try:
        made = setup(root)
        rows = check_figures(made["ws"], made["tokens"], args.requests)
        rows += guard_figures(made["ws"], made["tokens"]["user1"], args.requests)
        port = _port()
        env = {**os.environ, "GRISTMILL_WORKSPACE": str(made["ws"].root)}
        log = open(root / "server.log", "wb")
        proc = subprocess.Popen([str(BIN / "gristmill"), "server", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            import httpx

            for _ in range(100):
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            rows += http_figures(base, made["tokens"]["user1"], [int(c) for c in args.clients.split(",")],
                                 args.requests)
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
    finally:
        if database:
            import psycopg

            from gristmill.metadata.db import _engines

            for md in _engines.values():
                md.engine.dispose()
            with psycopg.connect(args.metadata, autocommit=True) as con:
                con.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    meta = {"metadata": "PostgreSQL" if database else "SQLite", "cores": os.cpu_count(),
            "python": platform.python_version(), "load": os.getloadavg()}
    if args.json:
        print(json.dumps({"machine": meta, "rows": rows}, indent=2))
        return
    print(f"metadata {meta['metadata']}, {meta['cores']} cores, load {meta['load'][0]:.2f}")
    print("| what | clients | calls/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['what']} | {r['clients']} | {r['calls_per_s']} | {r['p50_ms']} | {r['p99_ms']} |")


if __name__ == "__main__":
    main()
