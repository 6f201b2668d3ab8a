"""Jobs and workers: submit, list, show, logs, cancel; the workers and their slots."""

from __future__ import annotations

from typing import Any

from gristmill.errors import GristmillError
from gristmill.identity.roles import Action
from gristmill.services.context import Context
from gristmill.services.registry import Operation, operation

MAX_LIST = 500
#: slots a job asks by default: trainings spread their folds over two cores
DEFAULT_SLOTS = {"models.train": 1}


def _principal_record(ctx: Context) -> dict:
    p = ctx.principal
    return {"name": p.name, "kind": p.kind, "token_id": p.token_id, "scope_project": p.scope_project,
            "scope_role": p.scope_role.value if p.scope_role else None}


def queue(ctx: Context, op: Operation, params: dict, slots: int | None = None,
          memory_mb: int | None = None) -> dict:
    """Record the call as a job (the caller passed the policy check for it) and schedule it."""
    from gristmill.config import load_config
    from gristmill.jobs import scheduler, store

    if ctx.principal.kind not in ("user", "project-token"):
        raise GristmillError(f"{op.name} runs as a job, which needs a user or project token")
    unknown = set(params) - set(op.params)
    if unknown:
        raise GristmillError(f"{op.name} takes no parameter {', '.join(sorted(unknown))}; "
                             f"it takes {', '.join(op.params) or 'none'}")
    cfg = load_config(ctx.ws).jobs
    job = store.submit(ctx.md, op.name, params.get("project"), _principal_record(ctx), params,
                       slots=slots or DEFAULT_SLOTS.get(op.name, 1), memory_mb=memory_mb,
                       max_attempts=cfg.max_attempts, request_id=ctx.request_id)
    try:
        scheduler.dispatch(ctx.ws)
    except Exception as exc:  # the workers' own passes will send it; the job is recorded
        import logging

        logging.getLogger("gristmill.jobs").warning("job %s: dispatch failed: %s", job["id"], exc)
    return store.get(ctx.md, job["id"])


@operation("jobs.submit", "POST", "/jobs", None)
def submit(ctx: Context, kind: str, params: dict[str, Any] | None = None, slots: int = 1,
           memory_mb: int | None = None) -> dict:
    """Queue operation ``kind`` (one of the long ones: ingest, features, training, monitoring) as a
    job asking ``slots`` worker slots (and at most ``memory_mb`` of memory). The same policy check
    as calling the operation directly; returns the job."""
    from gristmill.services.registry import get, invoke

    op = get(kind)
    if not op.job:
        raise GristmillError(f"{kind} is not a job; jobs are: {', '.join(job_kinds())}")
    if not 1 <= slots <= 256:
        raise GristmillError(f"slots must be between 1 and 256, not {slots}")
    if memory_mb is not None and memory_mb < 64:
        raise GristmillError(f"memory_mb must be at least 64, not {memory_mb}")
    sub = Context(ctx.ws, ctx.principal, submit_jobs=True, request_id=ctx.request_id,
                  job_options={"slots": slots, "memory_mb": memory_mb})
    return invoke(sub, kind, **(params or {}))["job"]


@operation("jobs.noop", "POST", "/jobs/noop", Action.probe_jobs, job=True)
def noop(ctx: Context, seconds: float = 0.0) -> dict:
    """A job that does nothing but sleep ``seconds`` (at most 60): admins check that the workers
    take jobs, and measure the queue with it (bench/queue_bench.py). Returns where it ran."""
    import os
    import socket
    import time

    if not 0 <= seconds <= 60:
        raise GristmillError(f"seconds must be between 0 and 60, not {seconds}")
    if seconds:
        time.sleep(seconds)
    return {"slept": seconds, "worker": os.environ.get("GRISTMILL_WORKER_NAME"), "host": socket.gethostname()}


def job_kinds() -> list[str]:
    from gristmill.services.registry import load_all

    return sorted(n for n, op in load_all().items() if op.job)


@operation("jobs.list", "GET", "/jobs", None)
def list_jobs(ctx: Context, project: str | None = None, state: str | None = None,
              user: str | None = None, kind: str | None = None, limit: int = 50, offset: int = 0) -> dict:
    """Jobs newest first, of the projects the caller may see and the caller's own; ``state`` is
    one of queued, dispatched, running, succeeded, failed, cancelled, or ``active``."""
    from gristmill.identity.policy import authorize, visible_projects
    from gristmill.identity.roles import Action
    from gristmill.jobs import store
    from gristmill.services.project_ops import known_projects

    if not 1 <= limit <= MAX_LIST or offset < 0:
        raise GristmillError(f"limit must be between 1 and {MAX_LIST}, offset at least 0")
    if project is not None:
        authorize(ctx.md, ctx.principal, Action.read, project)
    everything = ctx.is_local or ctx.principal.is_admin
    projects = None if everything else visible_projects(ctx.md, ctx.principal, known_projects(ctx))
    out = store.listing(ctx.md, projects, user, project=project, state=state, kind=kind, limit=limit,
                        offset=offset, own_user=None if everything else ctx.principal.name)
    out["workers_live"] = _live(ctx)
    return out


def _live(ctx: Context) -> int:
    from gristmill.config import load_config
    from gristmill.jobs import store

    return len(store.live_workers(ctx.md, load_config(ctx.ws).jobs.lost_after_seconds))


def _visible_job(ctx: Context, job: str, change: bool = False):
    from gristmill.errors import NoAccess, NotFound
    from gristmill.identity.policy import authorize_job
    from gristmill.jobs import store

    found = store.row(ctx.md, job)
    try:
        authorize_job(ctx.md, ctx.principal, found, change)
    except NoAccess:
        raise NotFound(f"no job {job!r} (`gristmill jobs list` shows yours)") from None
    return found


@operation("jobs.show", "GET", "/jobs/{job}", None)
def show(ctx: Context, job: str) -> dict:
    """One job: its state, progress (stage, trials, best score, time left), result or error."""
    from gristmill.jobs import store

    _visible_job(ctx, job)
    return store.get(ctx.md, job)   # a queued job's waiting_for: the scheduler's last pass recorded it


@operation("jobs.logs", "GET", "/jobs/{job}/logs", None)
def logs(ctx: Context, job: str, since: int = 0, limit: int = 1000) -> dict:
    """The job's log lines after line ``since`` (``next`` is the one to ask from next time)."""
    from gristmill.jobs import store

    if not 1 <= limit <= 10_000 or since < 0:
        raise GristmillError("limit must be between 1 and 10000, since at least 0")
    _visible_job(ctx, job)
    return store.logs(ctx.md, job, since, limit)


@operation("jobs.cancel", "POST", "/jobs/{job}/cancel", None, changes=True)
def cancel(ctx: Context, job: str) -> dict:
    """Cancel a job: a queued one at once, a running one as soon as its worker sees it (its
    process is stopped). Its user, the project's owners and admins may."""
    from gristmill.jobs import store

    found = _visible_job(ctx, job, change=True)
    ctx.note(before=found.state, after="cancelled", job=job, project=found.project)
    return store.request_cancel(ctx.md, job)


@operation("workers.list", "GET", "/workers", None)
def list_workers(ctx: Context) -> dict:
    """The workers: host, slots (busy of total), live, lost or stopped."""
    from gristmill.config import load_config
    from gristmill.jobs import store

    return {"workers": store.list_workers(ctx.md, load_config(ctx.ws).jobs.lost_after_seconds)}
