"""The scheduler: APScheduler 3 with a persistent SQLite job store in the workspace.

``gristmill monitor schedule`` writes a job into ``<workspace>/monitoring/scheduler.db``;
``gristmill scheduler`` is the long-running process that runs every project's jobs from it:

- ``coalesce=True``: runs missed while the scheduler was down are caught up *once*, not replayed;
- ``misfire_grace_time``: how late a missed run may still be caught up (per job);
- ``max_instances=1``, plus a lock file per job: one job never runs twice at the same time, even
  when ``gristmill monitor run`` starts it by hand meanwhile; one scheduler per workspace (a lock
  file, so a second one refuses to start).

The scheduler re-reads the store every ``poll`` seconds, so jobs scheduled by another process are
picked up without a restart. Each run re-reads the job's definition, so edits apply to the next run.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gristmill.errors import GristmillError

log = logging.getLogger("gristmill.monitoring.scheduler")

RUN = "monitoring.scheduler:run_scheduled"


def store_path(root: Path) -> Path:
    return Path(root) / "monitoring" / "scheduler.db"


def job_id(project: str, name: str) -> str:
    return f"{project}:{name}"


def make_scheduler(root: Path, blocking: bool = False):
    """An APScheduler scheduler over the workspace's job store (not started)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    path = store_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{path}")},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone="UTC",
    )


def trigger_of(schedule) -> Any:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone="UTC")
    return IntervalTrigger(seconds=schedule.every_seconds, timezone="UTC")


def _store_session(root: Path):
    """A scheduler without a thread over the store: changes are written, nothing ever runs here
    (a paused BackgroundScheduler may still process due jobs while it shuts down)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.base import BaseScheduler

    class StoreOnly(BaseScheduler):
        def wakeup(self) -> None:
            pass

        def shutdown(self, wait: bool = False) -> None:
            super().shutdown(wait=False)

    path = store_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    scheduler = StoreOnly(jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{path}")},
                          job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
                          timezone="UTC")
    scheduler.start(paused=True)
    return scheduler


def schedule(root: Path, project: str, job, jobs_folder: Path, func: str = RUN,
             next_run_time: datetime | None = None) -> dict[str, Any]:
    """Add or replace the stored schedule of ``job`` (a :class:`~monitoring.jobs.JobSpec` with ``schedule``)."""
    if job.schedule is None:
        raise GristmillError(f"job {job.name!r} has no schedule: give --cron or --every")
    scheduler = _store_session(root)
    try:
        extra = {"next_run_time": next_run_time} if next_run_time is not None else {}
        stored = scheduler.add_job(
            func, trigger_of(job.schedule), id=job_id(project, job.name), name=job_id(project, job.name),
            kwargs={"workspace": str(root), "project": project, "job": job.name,
                    "jobs_folder": str(jobs_folder)},
            replace_existing=True, coalesce=True, max_instances=1,
            misfire_grace_time=job.schedule.misfire_grace_seconds, **extra)
        return describe(stored)
    finally:
        scheduler.shutdown(wait=False)


def unschedule(root: Path, project: str, name: str) -> bool:
    """Remove a stored schedule; False when there was none."""
    from apscheduler.jobstores.base import JobLookupError

    if not store_path(root).is_file():
        return False
    scheduler = _store_session(root)
    try:
        scheduler.remove_job(job_id(project, name))
        return True
    except JobLookupError:
        return False
    finally:
        scheduler.shutdown(wait=False)


def list_scheduled(root: Path, project: str | None = None) -> list[dict[str, Any]]:
    if not store_path(root).is_file():
        return []
    scheduler = _store_session(root)
    try:
        found = [describe(j) for j in scheduler.get_jobs()]
    finally:
        scheduler.shutdown(wait=False)
    return [j for j in found if project is None or j["project"] == project]


def describe(job) -> dict[str, Any]:
    next_run = getattr(job, "next_run_time", None)
    return {"id": job.id, "project": job.kwargs.get("project"), "job": job.kwargs.get("job"),
            "trigger": str(job.trigger), "next_run": next_run.isoformat() if next_run else None,
            "misfire_grace_seconds": job.misfire_grace_time}


def run_scheduled(workspace: str, project: str, job: str, jobs_folder: str) -> None:
    """What the scheduler calls: load the job's current definition and run it; log the outcome."""
    from gristmill.spec import load_spec
    from gristmill.workspace import Workspace
    from monitoring.jobs import find_job
    from monitoring.runner import JobBusy, run_job

    try:
        ws = Workspace.resolve(workspace)
        spec = load_spec(ws.spec_path(ws.require_project(project)))
        definition, _ = find_job(spec, job, Path(jobs_folder))
        summary = run_job(ws, spec, definition)
        reasons = (summary.get("alerts") or {}).get("reasons") or []
        log.info("%s/%s: %s in %.1f s%s", project, job, summary["status"], summary["seconds"],
                 f" ({'; '.join(reasons)})" if reasons else "")
    except JobBusy as exc:
        log.info("%s/%s: skipped: %s", project, job, exc)
    except GristmillError as exc:
        log.error("%s/%s: %s", project, job, exc)
    except Exception:
        log.exception("%s/%s failed", project, job)


class SchedulerBusy(GristmillError):
    pass


def serve(root: Path, poll: float = 5.0, stop: threading.Event | None = None) -> None:
    """Run every stored job on time until ``stop`` is set (or SIGINT/SIGTERM in the CLI)."""
    lock_path = store_path(root).with_name("scheduler.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise SchedulerBusy(f"a scheduler already runs on workspace {root} (pid {holder}); "
                            "stop it first, one per workspace") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    stop = stop or threading.Event()
    scheduler = make_scheduler(root)
    scheduler.start()
    log.info("scheduler started on %s (%d jobs stored)", root, len(scheduler.get_jobs()))
    try:
        while not stop.wait(poll):
            scheduler.wakeup()  # pick up jobs another process added to the store
    finally:
        scheduler.shutdown(wait=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
        log.info("scheduler stopped at %s", datetime.now(timezone.utc).isoformat(timespec="seconds"))
