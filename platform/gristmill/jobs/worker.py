"""``gristmill worker``: a Celery worker with slots, a heartbeat, the scheduler, health and metrics.

Beside Celery's own consumer the worker keeps one thread that, every ``jobs.heartbeat_seconds``,
records that it is alive (with its slots), stops the attempts whose cancel was asked, and runs one
scheduling pass (:func:`~gristmill.jobs.scheduler.dispatch`): any live worker can take back the jobs
of a lost one. ``--port`` serves ``/healthz`` (the heartbeat is recent), ``/readyz`` (the metadata
database answers) and ``/metrics`` (Prometheus) on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gristmill.errors import GristmillError
from gristmill.workspace import Workspace

log = logging.getLogger("gristmill.jobs")
_NAME: list[str] = []


def current_worker() -> str:
    if not _NAME:
        raise RuntimeError("no worker is running in this process")
    return _NAME[0]


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def check_name(name: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}", name):
        raise GristmillError(f"worker name {name!r}: use letters, digits, '.', '_' and '-' (at most 101)")
    return name


class Heart(threading.Thread):
    """The worker's heartbeat, cancel watcher and scheduler."""

    def __init__(self, ws: Workspace, name: str, slots: int, memory_mb: int | None, every: float,
                 metrics_url: str | None) -> None:
        super().__init__(name="gristmill-heartbeat", daemon=True)
        self.ws, self.worker, self.slots, self.memory_mb = ws, name, slots, memory_mb
        self.every, self.metrics_url = every, metrics_url
        self.started_at = time.time()
        self.last_beat = 0.0
        self.stop = threading.Event()

    def beat(self) -> None:
        from gristmill.config import metadata
        from gristmill.jobs import store

        store.heartbeat(metadata(self.ws), self.worker, socket.gethostname(), os.getpid(), self.slots,
                        self.memory_mb, self.metrics_url, self.started_at)
        self.last_beat = time.time()

    def run(self) -> None:
        from gristmill.config import metadata
        from gristmill.jobs import runner, store
        from gristmill.jobs.scheduler import dispatch

        while not self.stop.is_set():
            try:
                self.beat()
                for job_id in store.cancel_requested(metadata(self.ws), list(runner.RUNNING)):
                    if runner.kill(job_id):
                        log.info("job %s: cancelled on request", job_id)
                dispatch(self.ws)
            except Exception as exc:  # a database or broker hiccup: say it, try again
                log.warning("worker %s: heartbeat failed: %s: %s", self.worker, type(exc).__name__, exc)
            self.stop.wait(self.every)


def serve_probes(heart: Heart, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    from gristmill.jobs.metrics import exposition, workspace_registry

    registry = workspace_registry(heart.ws)

    class Probes(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            if self.path == "/metrics":
                (body, kind), status = exposition(registry), 200
            elif self.path in ("/healthz", "/readyz"):
                fresh = time.time() - heart.last_beat < 3 * heart.every + 1
                ok = fresh if self.path == "/healthz" else fresh and _db_ready(heart.ws)
                body = json.dumps({"status": "ok" if ok else "unhealthy", "worker": heart.worker,
                                   "slots": heart.slots}).encode()
                kind, status = "application/json", 200 if ok else 503
            else:
                body, kind, status = b'{"error": "not found", "code": "NotFound"}', "application/json", 404
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Probes)
    threading.Thread(target=server.serve_forever, name="gristmill-probes", daemon=True).start()
    return server


def _db_ready(ws: Workspace) -> bool:
    from gristmill.config import metadata

    try:
        metadata(ws).ping()
        return True
    except Exception:
        return False


def run_worker(ws: Workspace, name: str | None = None, slots: int | None = None,
               memory_mb: int | None = None, port: int | None = None, host: str = "127.0.0.1") -> None:
    """Start a worker on the workspace's queue and block until it is stopped (Ctrl-C, SIGTERM)."""
    from gristmill.config import load_config
    from gristmill.jobs import store
    from gristmill.jobs.engine import broker_url, celery_app, queue_name

    ws = ws.ensure()
    cfg = load_config(ws).jobs
    name = check_name(name or default_name())
    slots = slots or os.cpu_count() or 1
    if slots < 1:
        raise GristmillError("--slots must be at least 1")
    _NAME[:] = [name]
    os.environ["GRISTMILL_WORKER_NAME"] = name
    app = celery_app(ws)
    heart = Heart(ws, name, slots, memory_mb, cfg.heartbeat_seconds, None)
    probes = None
    if port is not None:
        probes = serve_probes(heart, port, host)
        heart.metrics_url = f"http://{host}:{probes.server_address[1]}/metrics"
    heart.beat()
    heart.start()
    where = broker_url(ws).split("@")[-1]  # never a password
    print(f"worker {name}: {slots} slot(s), queue {queue_name(name)}, broker {where}"
          + (f", probes on {heart.metrics_url.rsplit('/', 1)[0]}" if probes else ""), flush=True)
    worker = app.Worker(hostname=f"{name}@{socket.gethostname()}", queues=[queue_name(name)],
                        concurrency=slots, pool="threads", loglevel="WARNING", without_gossip=True,
                        without_mingle=True, without_heartbeat=True, optimization="fair", quiet=True)
    try:
        worker.start()
    finally:
        heart.stop.set()
        from gristmill.config import metadata

        try:
            store.worker_stopped(metadata(ws), name)
        except Exception as exc:  # it will count as lost instead
            log.warning("worker %s: could not record its stop: %s", name, exc)
        if probes is not None:
            probes.shutdown()
