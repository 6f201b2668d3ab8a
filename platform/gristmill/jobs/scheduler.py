"""Which queued job runs where: slots, limits, fair order; and the jobs of lost workers.

One pass (:func:`dispatch`) runs in one serialized transaction, whoever calls it (the server after a
submit, every worker on its heartbeat and after each job):

1. jobs on a worker that stopped answering (no heartbeat for ``jobs.lost_after_seconds``), and jobs
   sent to a worker that never started them, are taken back: queued again for their next attempt
   (after a backoff) or failed once their attempts are used up;
2. queued jobs go to live workers with free slots. The next job is always taken from the user with
   the fewest jobs running (then the one waiting longest), so one user's 200 queued trainings do
   not starve another user's one; per-user and per-project limits hold; a job waits until some
   worker has as many free slots as it asks. Why each job still waits is recorded on it
   (``gm_jobs.waiting_for``), so reading a job never needs a pass of its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import sqlalchemy as sa

from gristmill.jobs import store
from gristmill.metadata.db import jobs
from gristmill.workspace import Workspace

log = logging.getLogger("gristmill.jobs")
DISPATCH_LOCK = 727002
START_GRACE_SECONDS = 60.0   # a job sent to a live worker must start within this


@dataclass
class Pass:
    sent: list[tuple[str, int, str]]      # (job, attempt, worker)
    lost: list[tuple[str, int, str, str]]  # (job, attempt, kind, reason)
    waiting: dict[str, str]               # job -> why it still waits


def dispatch(ws: Workspace, send: bool = True) -> Pass:
    """One scheduling pass; sends the chosen attempts to their workers' queues."""
    from gristmill.config import load_config, metadata

    md, cfg = metadata(ws), load_config(ws).jobs
    now = time.time()
    lost: list[tuple[str, int, str, str]] = []
    projects: dict[str, str | None] = {}
    with md.write() as conn:
        if md.team:
            conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({DISPATCH_LOCK})"))
        live = {w.name: w for w in store.live_workers(md, cfg.lost_after_seconds, conn)}
        active = conn.execute(sa.select(jobs).where(jobs.c.state.in_((store.DISPATCHED, store.RUNNING)))).all()
        for job in active:
            projects[job.id] = job.project
            if job.worker not in live:
                lost.append((job.id, job.attempt, job.kind, f"worker {job.worker} was lost"))
            elif job.state == store.DISPATCHED and (job.dispatched_at or now) < now - START_GRACE_SECONDS:
                lost.append((job.id, job.attempt, job.kind, f"worker {job.worker} did not start it"))
        gone = {j for j, *_ in lost}
        busy_slots: dict[str, int] = {}
        by_user: dict[str, int] = {}
        by_project: dict[str, int] = {}
        for job in active:
            if job.id in gone:
                continue
            busy_slots[job.worker] = busy_slots.get(job.worker, 0) + job.slots
            by_user[job.user_name] = by_user.get(job.user_name, 0) + 1
            if job.project:
                by_project[job.project] = by_project.get(job.project, 0) + 1
        free = {name: w.slots - busy_slots.get(name, 0) for name, w in live.items()}
        largest = max((w.slots for w in live.values()), default=0)
        queued = conn.execute(sa.select(jobs).where(jobs.c.state == store.QUEUED, jobs.c.not_before <= now)
                              .order_by(jobs.c.created_at, jobs.c.id)).all()
        pending: dict[str, list] = {}
        for job in queued:
            pending.setdefault(job.user_name, []).append(job)
        sent, waiting = [], {}
        while pending:
            user = min(pending, key=lambda u: (by_user.get(u, 0), pending[u][0].created_at))
            chosen = None
            for job in pending[user]:
                reason = _why_waits(job, cfg, by_user, by_project, free, largest, live)
                if reason is None:
                    chosen = job
                    break
                waiting[job.id] = reason
            if chosen is None:
                del pending[user]
                continue
            pending[user].remove(chosen)
            if not pending[user]:
                del pending[user]
            waiting.pop(chosen.id, None)
            worker = max((n for n in free if free[n] >= chosen.slots), key=lambda n: (free[n], n))
            free[worker] -= chosen.slots
            by_user[user] = by_user.get(user, 0) + 1
            if chosen.project:
                by_project[chosen.project] = by_project.get(chosen.project, 0) + 1
            attempt = chosen.attempt + 1
            conn.execute(jobs.update().where(jobs.c.id == chosen.id).values(
                state=store.DISPATCHED, attempt=attempt, worker=worker, dispatched_at=now, waiting_for=None))
            sent.append((chosen.id, attempt, worker))
        changed = [{"job": j.id, "why": waiting[j.id][:300]} for j in queued
                   if j.id in waiting and j.waiting_for != waiting[j.id][:300]]
        if changed:  # what `GET /jobs/{id}` says, without running a pass of its own
            conn.execute(jobs.update().where(jobs.c.id == sa.bindparam("job"))
                         .values(waiting_for=sa.bindparam("why")), changed)
    for job_id, attempt, kind, reason in lost:
        state = store.retry_later(md, job_id, attempt, reason, cfg.retry_backoff_seconds)
        log.warning("job %s attempt %d: %s; now %s", job_id, attempt, reason, state)
        store.add_logs(md, job_id, [(time.time(), "WARNING", f"{reason}; the job is {state}")])
        recover(ws, job_id, kind, projects.get(job_id))
    if send:
        from gristmill.jobs.engine import send as send_one

        for job_id, attempt, worker in sent:
            try:
                send_one(ws, job_id, attempt, worker)
            except Exception as exc:  # the broker is down: the job waits for the next pass
                reason = f"the broker did not take it ({type(exc).__name__}: {str(exc)[:200]})"
                store.retry_later(md, job_id, attempt, reason, cfg.retry_backoff_seconds)
                log.warning("job %s: %s", job_id, reason)
    return Pass(sent, lost, waiting)


def _why_waits(job, cfg, by_user, by_project, free, largest, live) -> str | None:
    if not live:
        return "no worker is running: start one with `gristmill worker`"
    if job.slots > largest:
        return f"it asks {job.slots} slots; the largest live worker has {largest}"
    if by_user.get(job.user_name, 0) >= cfg.per_user:
        return f"{job.user_name} already runs {cfg.per_user} jobs (jobs.per_user)"
    if job.project and by_project.get(job.project, 0) >= cfg.per_project:
        return f"project {job.project} already runs {cfg.per_project} jobs (jobs.per_project)"
    if not any(f >= job.slots for f in free.values()):
        return f"waiting for {job.slots} free slot(s)"
    if job.memory_mb and not any(w.memory_mb is None or w.memory_mb >= job.memory_mb for w in live.values()):
        return f"it asks {job.memory_mb} MB; no live worker offers that much"
    return None


def recover(ws: Workspace, job_id: str, kind: str, project: str | None) -> None:
    """Leave nothing of a lost attempt half-done: its MLflow runs end FAILED, its Optuna trials FAIL."""
    if kind not in ("models.train", "models.trials") or not project:
        return
    try:
        from gristmill.training.recovery import fail_orphans
    except ImportError:  # pragma: no cover - older trainers
        return
    try:
        marked = fail_orphans(ws, project, job_id=job_id)
        if any(marked.values()):
            log.warning("job %s: marked failed what its lost attempt left running: %s", job_id, marked)
    except Exception as exc:  # recovery must not stop the scheduler; say what was left
        log.warning("job %s: could not close its MLflow runs / Optuna trials: %s", job_id, exc)
