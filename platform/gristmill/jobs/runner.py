"""One attempt of a job on a worker: a child process runs it; this side watches, logs and cleans up.

The child (``python -m gristmill.jobs.execute``) runs the operation through ``services.invoke`` as
the user who submitted it (the same policy check and audit record as a direct call) and records
the outcome. It is a separate process so that a job can be cancelled (its process group is killed),
limited in memory (``RLIMIT_AS``), and may start processes of its own; it dies with its worker
(``PR_SET_PDEATHSIG``), so a worker killed with ``kill -9`` leaves nothing running behind it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from gristmill.jobs import store
from gristmill.workspace import Workspace

log = logging.getLogger("gristmill.jobs")
#: the child processes of the attempts running in this worker process: job id -> Popen
RUNNING: dict[str, subprocess.Popen] = {}
_running_lock = threading.Lock()


def _child_setup(memory_mb: int | None):
    def setup() -> None:
        os.setsid()
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
        if memory_mb:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return setup


def run_attempt(ws: Workspace, job_id: str, attempt: int, worker: str) -> str:
    """Run attempt ``attempt`` of the job here (a stale attempt is dropped); returns its end state."""
    from gristmill.config import load_config, metadata
    from gristmill.jobs.scheduler import dispatch

    md = metadata(ws)
    job = store.claim(md, job_id, attempt, worker)
    if job is None:
        log.info("job %s attempt %d is not current here: dropped", job_id, attempt)
        return "stale"
    from gristmill.jobs import metrics

    metrics.started(job)
    env = dict(os.environ, GRISTMILL_WORKSPACE=str(ws.root), GRISTMILL_JOB_ID=job_id,
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "gristmill.jobs.execute", job_id, str(attempt)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, preexec_fn=_child_setup(job.memory_mb))
    with _running_lock:
        RUNNING[job_id] = proc
    tail: list[str] = []
    try:
        _pump(md, job_id, proc, tail)
        code = proc.wait()
    finally:
        with _running_lock:
            RUNNING.pop(job_id, None)
    final = store.row(md, job_id)
    if final.state in (store.DISPATCHED, store.RUNNING) and final.attempt == attempt:  # no end recorded
        cfg = load_config(ws).jobs
        if final.cancel_requested:
            store.finish(md, job_id, attempt, store.CANCELLED, error="cancelled while running")
        elif code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            store.retry_later(md, job_id, attempt, f"its process was killed by {name}{hint}",
                              cfg.retry_backoff_seconds)
        else:
            last = tail[-1] if tail else "no output"
            store.finish(md, job_id, attempt, store.FAILED, error=f"its process exited with {code}: {last}"[:800])
    final = store.row(md, job_id)
    metrics.finished(final)
    try:
        dispatch(ws)  # the freed slots go to the next job at once
    except Exception as exc:  # the heartbeat's pass will do it
        log.warning("dispatch after job %s failed: %s", job_id, exc)
    return final.state


def _pump(md, job_id: str, proc: subprocess.Popen, tail: list[str]) -> None:
    """Copy the child's output (JSON log lines, or plain text) into the job's log, twice a second."""
    buffer: list[tuple[float, str, str]] = []
    last_flush = time.monotonic()
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        if not line:
            continue
        at, level, message = time.time(), "OUT", line
        if line.startswith("{"):
            try:
                record = json.loads(line)
                at, level, message = record.get("ts", at), record.get("level", "INFO"), record.get("message", line)
            except ValueError:
                pass
        buffer.append((at, level, message))
        tail[:] = (tail + [message])[-5:]
        if time.monotonic() - last_flush > 0.5:
            store.add_logs(md, job_id, buffer)
            buffer, last_flush = [], time.monotonic()
    store.add_logs(md, job_id, buffer)


def kill(job_id: str) -> bool:
    """Stop the attempt of ``job_id`` running in this process (its whole process group)."""
    with _running_lock:
        proc = RUNNING.get(job_id)
    if proc is None or proc.poll() is not None:
        return False
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True
