"""Following a job from the terminal: a live progress bar, its log lines, its result or its error."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

from gristmill.errors import GristmillError

FINAL = ("succeeded", "failed", "cancelled")


class JobFailed(GristmillError):
    """The job ended failed or cancelled; the message is the job's own error."""


def describe(job: dict) -> str:
    """One line: state, stage, trials, best score, time left."""
    p = (job.get("progress") or {}) if job["state"] == "running" else {}
    parts = [job["state"]]
    if job["state"] == "queued":
        parts.append(job.get("waiting_for") or "waiting for a worker")
    if p.get("stage"):
        parts.append(p["stage"])
    if p.get("done") is not None:
        parts.append(f"trials {p['done']}" + (f"/{p['total']}" if p.get("total") else ""))
    if p.get("best") is not None:
        best = p["best"]
        parts.append(f"best {p.get('metric') or 'score'} {best:.4f}" if isinstance(best, (int, float)) else f"best {best}")
    if p.get("eta_seconds") is not None:
        parts.append(f"{int(p['eta_seconds'])}s left")
    if p.get("message") and job["state"] != "queued":
        parts.append(p["message"])
    return " · ".join(str(x) for x in parts)


def follow(job: dict, fetch: Callable[[str], dict], fetch_logs: Callable[[str, int], dict] | None = None,
           show: bool = True, poll: float = 0.5, timeout: float | None = None) -> Any:
    """Wait for ``job`` to end, drawing its progress on stderr (``show``); return its result or raise
    :class:`JobFailed` with its error. Ctrl-C leaves the job running and says how to find it again."""
    job_id = job["id"]
    since, started = 0, time.monotonic()
    bar = None
    if show and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[kind]}[/]"), BarColumn(),
                       TextColumn("{task.description}"), TimeElapsedColumn(),
                       console=Console(stderr=True), transient=True)
        task = bar.add_task(describe(job), total=None, kind=f"{job['kind']} {job_id}")
        bar.start()
    elif show:
        print(f"job {job_id} ({job['kind']}): {describe(job)}", file=sys.stderr, flush=True)
    last_line = None
    try:
        while True:
            if fetch_logs is not None and show:
                got = fetch_logs(job_id, since)
                since = got["next"]
                for line in got["lines"]:
                    if line["level"] in ("WARNING", "ERROR", "CRITICAL"):
                        text = f"  {line['level'].lower()}: {line['message']}"
                        (bar.console.print(text, markup=False, highlight=False) if bar
                         else print(text, file=sys.stderr, flush=True))
            if job["state"] in FINAL:
                break
            if timeout is not None and time.monotonic() - started > timeout:
                raise GristmillError(f"job {job_id} is still {job['state']} after {timeout:.0f}s; "
                                     f"follow it with `gristmill jobs watch {job_id}`")
            time.sleep(poll)
            job = fetch(job_id)
            line = describe(job)
            if bar is not None:
                p = job.get("progress") or {}
                total = p.get("total")
                bar.update(task, description=line, total=total, completed=p.get("done") or 0)
            elif show and line != last_line:
                print(f"job {job_id}: {line}", file=sys.stderr, flush=True)
            last_line = line
    except KeyboardInterrupt:
        if bar is not None:
            bar.stop()
        raise GristmillError(f"stopped following; job {job_id} goes on "
                             f"(`gristmill jobs watch {job_id}`, `gristmill jobs cancel {job_id}`)") from None
    finally:
        if bar is not None:
            bar.stop()
    if job["state"] != "succeeded":
        raise JobFailed(f"job {job_id} {job['state']}: {job.get('error') or 'no reason recorded'}")
    return job["result"]
