"""The Celery application: a Redis (or RabbitMQ) broker in team mode, a SQLite file otherwise.

Every worker consumes its own queue (``gm.w.<worker>``): the scheduler, not Celery's prefetch,
picks the worker, so slots and fairness hold. Tasks are acknowledged late and rejected when their
worker is lost (Celery's reliability settings); the job record decides whether a redelivered
message is still current.
"""

from __future__ import annotations

import threading

from gristmill.workspace import Workspace

TASK = "gristmill.run_job"
_apps: dict[str, object] = {}
_lock = threading.Lock()


def broker_url(ws: Workspace) -> str:
    from gristmill.config import load_config

    configured = load_config(ws).jobs.broker
    if configured:
        return configured
    folder = ws.root / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqla+sqlite:///{folder / 'broker.db'}"


def queue_name(worker: str) -> str:
    return f"gm.w.{worker}"


def celery_app(ws: Workspace):
    """The Celery application of the workspace's broker (one per broker URL and process)."""
    url = broker_url(ws)
    with _lock:
        found = _apps.get(url)
        if found is not None:
            return found
        from celery import Celery

        app = Celery("gristmill", broker=url, set_as_current=False)
        app.conf.update(
            task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
            task_ignore_result=True, task_serializer="json", accept_content=["json"],
            broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
            worker_redirect_stdouts=False, worker_send_task_events=False, task_send_sent_event=False,
            broker_transport_options=_transport_options(url),
            broker_pool_limit=4,
            worker_cancel_long_running_tasks_on_connection_loss=False,
        )

        @app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
        def run_job(self, job_id: str, attempt: int) -> str:
            from gristmill.jobs.runner import run_attempt
            from gristmill.jobs.worker import current_worker

            return run_attempt(Workspace.resolve(), job_id, attempt, current_worker())

        _apps[url] = app
        return app


def _transport_options(url: str) -> dict:
    if url.startswith("redis"):
        return {"visibility_timeout": 12 * 3600}
    if url.startswith("sqla+sqlite"):  # the SQLite file is shared by the server and every worker
        return {"connect_args": {"timeout": 30}}
    return {}


def send(ws: Workspace, job_id: str, attempt: int, worker: str) -> None:
    """Put the attempt on the chosen worker's queue."""
    celery_app(ws).send_task(TASK, args=[job_id, attempt], queue=queue_name(worker))
