"""The jobs' record in the metadata database: submit, claim, progress, logs, finish, cancel.

The metadata database, not the broker, is the truth about a job: Celery only carries a job's id and
attempt to the worker chosen for it. A message that arrives for an attempt that is no longer current
(a lost worker's job already sent elsewhere) is dropped, so a job never runs twice at once.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import sqlalchemy as sa

from gristmill.errors import GristmillError, NotFound
from gristmill.metadata.db import Metadata, job_logs, jobs, workers

QUEUED, DISPATCHED, RUNNING = "queued", "dispatched", "running"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
ACTIVE = (QUEUED, DISPATCHED, RUNNING)
FINAL = (SUCCEEDED, FAILED, CANCELLED)
STATES = ACTIVE + FINAL
LOG_LINE_MAX = 4000


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def public(row, with_params: bool = True) -> dict:
    """A job as the API, the CLI and the dashboard show it."""
    now = time.time()
    started = row.started_at
    waited = ((started or now) - row.created_at) if row.state != CANCELLED or started else None
    out = {"id": row.id, "kind": row.kind, "project": row.project, "user": row.user_name,
           "state": row.state, "slots": row.slots, "memory_mb": row.memory_mb, "attempt": row.attempt,
           "max_attempts": row.max_attempts, "worker": row.worker,
           "progress": _load(row.progress) or {}, "result": _load(row.result), "error": row.error,
           "cancel_requested": bool(row.cancel_requested), "parent": row.parent,
           "created_at": _iso(row.created_at), "started_at": _iso(started),
           "finished_at": _iso(row.finished_at),
           "queue_wait_seconds": None if waited is None else round(waited, 3),
           "run_seconds": None if not started else round((row.finished_at or now) - started, 3),
           "waiting_for": _waiting_for(row, now), "request_id": row.request_id}
    if with_params:
        out["params"] = _load(row.params)
    return out


def _waiting_for(row, now: float) -> str | None:
    """Why a queued job still waits: the reason the scheduler's last pass recorded (a read, never
    a scheduling pass), or its retry backoff."""
    if row.state != QUEUED:
        return None
    if row.not_before and row.not_before > now:
        return f"a retry after backoff, in {row.not_before - now:.0f} s ({row.error or 'earlier attempt failed'})"
    return row.waiting_for or "not yet seen by the scheduler"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def new_id() -> str:
    return "j" + secrets.token_hex(8)


def submit(md: Metadata, kind: str, project: str | None, principal: dict, params: dict, *,
           slots: int = 1, memory_mb: int | None = None, max_attempts: int = 3,
           parent: str | None = None, request_id: str | None = None) -> dict:
    """Record a new job as queued; the dispatcher sends it to a worker when it fits."""
    job_id = new_id()
    with md.write() as conn:
        conn.execute(jobs.insert().values(
            id=job_id, kind=kind, project=project, user_name=principal["name"],
            principal=_json(principal), params=_json(params), state=QUEUED, slots=slots,
            memory_mb=memory_mb, attempt=0, max_attempts=max_attempts, not_before=0.0,
            created_at=time.time(), cancel_requested=False, parent=parent, request_id=request_id))
    return get(md, job_id)


def row(md: Metadata, job_id: str):
    if not isinstance(job_id, str) or not job_id or len(job_id) > 32:
        raise NotFound(f"no job {job_id!r}")
    with md.engine.connect() as conn:
        found = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
    if found is None:
        raise NotFound(f"no job {job_id!r} (`gristmill jobs list` shows yours)")
    return found


def get(md: Metadata, job_id: str) -> dict:
    return public(row(md, job_id))


def listing(md: Metadata, projects: list[str] | None, user: str | None = None, *,
            project: str | None = None, state: str | None = None, kind: str | None = None,
            limit: int = 50, offset: int = 0, own_user: str | None = None) -> dict:
    """Jobs newest first. ``projects``: the projects the caller may see (None: all); jobs of no
    project are shown to their own user (``own_user``) only, unless ``projects`` is None."""
    query = sa.select(jobs)
    count = sa.select(sa.func.count()).select_from(jobs)
    conds = []
    if projects is not None:
        visible = jobs.c.project.in_(projects) if projects else sa.false()
        conds.append(sa.or_(visible, jobs.c.user_name == own_user) if own_user else visible)
    for column, value in ((jobs.c.project, project), (jobs.c.user_name, user), (jobs.c.kind, kind)):
        if value is not None:
            conds.append(column == value)
    if state is not None:
        if state == "active":
            conds.append(jobs.c.state.in_(ACTIVE))
        elif state in STATES:
            conds.append(jobs.c.state == state)
        else:
            raise GristmillError(f"job state {state!r} is not one of {', '.join(STATES)}, active")
    if conds:
        query, count = query.where(*conds), count.where(*conds)
    query = query.order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit).offset(offset)
    with md.engine.connect() as conn:
        rows = conn.execute(query).all()
        total = conn.execute(count).scalar_one()
    return {"jobs": [public(r, with_params=False) for r in rows], "total": total,
            "limit": limit, "offset": offset}


def counts(md: Metadata) -> dict[tuple[str, str], int]:
    """Jobs by (kind, state), for the metrics."""
    with md.engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.kind, jobs.c.state, sa.func.count())
                            .group_by(jobs.c.kind, jobs.c.state)).all()
    return {(k, s): n for k, s, n in rows}


def queue_figures(md: Metadata) -> dict:
    """The whole queue for the metrics, from the database: jobs by (kind, state), jobs that needed
    more than one attempt by kind, and by kind the age of the oldest job not yet started."""
    now = time.time()
    retried = sa.or_(jobs.c.attempt > 1, sa.and_(jobs.c.state == QUEUED, jobs.c.attempt >= 1))
    with md.engine.connect() as conn:
        again = conn.execute(sa.select(jobs.c.kind, sa.func.count()).where(retried).group_by(jobs.c.kind)).all()
        oldest = conn.execute(sa.select(jobs.c.kind, sa.func.min(jobs.c.created_at))
                              .where(jobs.c.state.in_((QUEUED, DISPATCHED))).group_by(jobs.c.kind)).all()
    return {"counts": counts(md), "retried": dict(again),
            "oldest_waiting": {kind: max(0.0, now - at) for kind, at in oldest}}


# -- the worker's side ---------------------------------------------------------------------------

def claim(md: Metadata, job_id: str, attempt: int, worker: str) -> Any | None:
    """Start attempt ``attempt`` of the job on ``worker``; None when that attempt is stale (the job
    moved on, finished or was cancelled) so the message is dropped."""
    with md.write() as conn:
        found = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if (found is None or found.attempt != attempt or found.state != DISPATCHED
                or found.worker != worker):
            return None
        if found.cancel_requested:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(
                state=CANCELLED, finished_at=time.time(), error="cancelled before it started"))
            return None
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(state=RUNNING, started_at=time.time()))
        return conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()


def set_progress(md: Metadata, job_id: str, progress: dict) -> None:
    with md.write() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.state == RUNNING)
                     .values(progress=_json(progress)))


def finish(md: Metadata, job_id: str, attempt: int, state: str, *, result: Any = None,
           error: str | None = None) -> bool:
    """End the attempt (only the current one may). Returns whether it was the current attempt."""
    with md.write() as conn:
        done = conn.execute(jobs.update().where(
            jobs.c.id == job_id, jobs.c.attempt == attempt, jobs.c.state.in_(ACTIVE)).values(
            state=state, result=_json(result), error=error, finished_at=time.time()))
        return done.rowcount == 1


def retry_later(md: Metadata, job_id: str, attempt: int, reason: str, backoff: float) -> str:
    """Queue the job again after ``backoff`` seconds, or fail it when its attempts are used up;
    returns the state it is left in."""
    with md.write() as conn:
        found = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if found is None or found.attempt != attempt or found.state not in ACTIVE:
            return found.state if found is not None else FAILED
        if found.cancel_requested:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(
                state=CANCELLED, finished_at=time.time(), error=f"cancelled ({reason})"))
            return CANCELLED
        if found.attempt >= found.max_attempts:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(
                state=FAILED, finished_at=time.time(),
                error=f"{reason}; gave up after {found.attempt} attempt(s)"))
            return FAILED
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(
            state=QUEUED, worker=None, dispatched_at=None, started_at=None,
            not_before=time.time() + backoff * (2 ** max(0, found.attempt - 1)),
            error=f"attempt {found.attempt}: {reason}"))
        return QUEUED


def request_cancel(md: Metadata, job_id: str) -> dict:
    """Cancel a queued job at once; ask a running one's worker to stop it."""
    with md.write() as conn:
        found = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if found is None:
            raise NotFound(f"no job {job_id!r}")
        if found.state in FINAL:
            raise GristmillError(f"job {job_id} has already {found.state}; there is nothing to cancel")
        values: dict[str, Any] = {"cancel_requested": True}
        if found.state == QUEUED:
            values |= {"state": CANCELLED, "finished_at": time.time(), "error": "cancelled while queued"}
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))
    return get(md, job_id)


def cancel_requested(md: Metadata, job_ids: list[str]) -> set[str]:
    if not job_ids:
        return set()
    with md.engine.connect() as conn:
        return set(conn.execute(sa.select(jobs.c.id).where(
            jobs.c.id.in_(job_ids), jobs.c.cancel_requested.is_(True))).scalars())


# -- logs ----------------------------------------------------------------------------------------

def add_logs(md: Metadata, job_id: str, lines: list[tuple[float, str, str]]) -> None:
    if not lines:
        return
    with md.write() as conn:
        conn.execute(job_logs.insert(), [{"job_id": job_id, "at": at, "level": level[:12],
                                          "message": message[:LOG_LINE_MAX]}
                                         for at, level, message in lines])


def logs(md: Metadata, job_id: str, since: int = 0, limit: int = 1000) -> dict:
    with md.engine.connect() as conn:
        rows = conn.execute(sa.select(job_logs).where(job_logs.c.job_id == job_id, job_logs.c.id > since)
                            .order_by(job_logs.c.id).limit(limit)).all()
    lines = [{"seq": r.id, "at": _iso(r.at), "level": r.level, "message": r.message} for r in rows]
    return {"job": job_id, "lines": lines, "next": rows[-1].id if rows else since}


# -- workers -------------------------------------------------------------------------------------

def heartbeat(md: Metadata, name: str, host: str, pid: int, slots: int, memory_mb: int | None,
              metrics_url: str | None = None, started_at: float | None = None) -> None:
    now = time.time()
    with md.write() as conn:
        done = conn.execute(workers.update().where(workers.c.name == name).values(
            host=host, pid=pid, slots=slots, memory_mb=memory_mb, seen_at=now, stopped=False,
            metrics_url=metrics_url))
        if done.rowcount == 0:
            conn.execute(workers.insert().values(name=name, host=host, pid=pid, slots=slots,
                                                 memory_mb=memory_mb, started_at=started_at or now,
                                                 seen_at=now, stopped=False, metrics_url=metrics_url))


def worker_stopped(md: Metadata, name: str) -> None:
    with md.write() as conn:
        conn.execute(workers.update().where(workers.c.name == name).values(stopped=True))


def live_workers(md: Metadata, lost_after: float, conn=None) -> list:
    query = sa.select(workers).where(workers.c.stopped.is_(False), workers.c.seen_at >= time.time() - lost_after)
    if conn is not None:
        return conn.execute(query).all()
    with md.engine.connect() as c:
        return c.execute(query).all()


def list_workers(md: Metadata, lost_after: float) -> list[dict]:
    now = time.time()
    with md.engine.connect() as conn:
        rows = conn.execute(sa.select(workers).order_by(workers.c.name)).all()
        busy = dict(conn.execute(sa.select(jobs.c.worker, sa.func.sum(jobs.c.slots))
                                 .where(jobs.c.state.in_((DISPATCHED, RUNNING))).group_by(jobs.c.worker)).all())
    out = []
    for r in rows:
        status = "stopped" if r.stopped else ("live" if r.seen_at >= now - lost_after else "lost")
        out.append({"name": r.name, "host": r.host, "pid": r.pid, "slots": r.slots,
                    "slots_busy": int(busy.get(r.name) or 0), "memory_mb": r.memory_mb, "status": status,
                    "seen_seconds_ago": round(now - r.seen_at, 1), "started_at": _iso(r.started_at),
                    "metrics_url": r.metrics_url})
    return out
