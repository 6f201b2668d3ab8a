"""The child process of one job attempt: ``python -m gristmill.jobs.execute <job> <attempt>``.

It runs the job's operation as the user who submitted it (``services.invoke``: the policy is asked
again now, so a user disabled or a role taken away since the submit stops the job), writes JSON log
lines on stdout (the worker copies them into the job's log) and records the outcome: a user mistake
fails the job at once with its one-line message, a transient failure (a database or broker that
did not answer) queues it again with backoff, anything else fails it with the error's name.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from gristmill.logs import REQUEST_ID, JsonLines  # noqa: F401 - JsonLines: its old home

TRANSIENT_NAMES = ("OperationalError", "InterfaceError", "ConnectionError", "ConnectionRefusedError",
                   "ConnectionResetError", "TimeoutError", "BrokenPipeError", "BusyLoadingError")


def is_transient(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ in TRANSIENT_NAMES:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class Reporter:
    """``ctx.report``: the job's progress, written at most twice a second (and always at a new stage)."""

    def __init__(self, md, job_id: str) -> None:
        self.md, self.job_id = md, job_id
        self.last, self.stage, self.started = 0.0, None, time.time()

    def __call__(self, progress: dict) -> None:
        from gristmill.jobs import store

        now = time.time()
        if progress.get("stage") == self.stage and now - self.last < 0.5:
            return
        self.last, self.stage = now, progress.get("stage")
        try:
            store.set_progress(self.md, self.job_id, {k: v for k, v in progress.items() if v is not None})
        except Exception as exc:  # progress is not worth failing the job for
            logging.getLogger("gristmill.jobs").warning("could not record progress: %s", exc)


def principal_of(md, stored: dict):
    """The submitter, checked again now: an unknown or disabled user stops the job."""
    from gristmill.errors import Unauthenticated
    from gristmill.identity import store as identity
    from gristmill.identity.principal import Principal
    from gristmill.identity.roles import Role

    if stored.get("kind") not in ("user", "project-token"):
        raise Unauthenticated(f"a job cannot run as a {stored.get('kind')!r} caller")
    user = identity.get_user(md, stored["name"])
    if user is None or user.disabled:
        raise Unauthenticated(f"user {stored['name']!r} is disabled or gone; the job does not run")
    if stored.get("token_id"):
        token = identity.get_token(md, stored["token_id"])
        if token is None or token.revoked_at:
            raise Unauthenticated("the token that submitted the job was revoked; the job does not run")
    role = stored.get("scope_role")
    return Principal(name=user.name, kind=stored["kind"],
                     is_admin=bool(user.is_admin) and stored["kind"] == "user",
                     token_id=stored.get("token_id"), scope_project=stored.get("scope_project"),
                     scope_role=Role(role) if role else None)


def run(job_id: str, attempt: int) -> int:
    from gristmill.config import load_config, metadata
    from gristmill.errors import GristmillError
    from gristmill.jobs import store
    from gristmill.services import Context, invoke
    from gristmill.workspace import Workspace

    ws = Workspace.resolve()
    md = metadata(ws)
    job = store.row(md, job_id)
    if job.attempt != attempt or job.state != store.RUNNING:
        logging.getLogger("gristmill.jobs").warning("attempt %d is not current: not run", attempt)
        return 0
    params = json.loads(job.params)
    REQUEST_ID.set(job.request_id)   # every log line of the job names the request that submitted it
    logging.getLogger("gristmill.jobs").info("%s %s: attempt %d of %d on %s%s", job.kind, job.project or "",
                                             attempt, job.max_attempts, job.worker,
                                             f" (request {job.request_id})" if job.request_id else "")
    try:
        ctx = Context(ws, principal_of(md, json.loads(job.principal)), job_id=job_id,
                      report=Reporter(md, job_id), request_id=job.request_id)
        ctx.step("start", f"{job.kind} started")
        result = invoke(ctx, job.kind, **params)
    except GristmillError as exc:
        logging.getLogger("gristmill.jobs").error("%s", exc)
        store.finish(md, job_id, attempt, store.FAILED, error=str(exc))
        return 1
    except Exception as exc:
        logging.getLogger("gristmill.jobs").exception("%s: %s", type(exc).__name__, exc)
        if is_transient(exc):
            state = store.retry_later(md, job_id, attempt, f"{type(exc).__name__}: {exc}"[:300],
                                      load_config(ws).jobs.retry_backoff_seconds)
            logging.getLogger("gristmill.jobs").warning("transient failure: the job is %s", state)
            return 2
        store.finish(md, job_id, attempt, store.FAILED, error=f"{type(exc).__name__}: {exc}"[:800])
        return 1
    store.finish(md, job_id, attempt, store.SUCCEEDED, result=result)
    logging.getLogger("gristmill.jobs").info("%s succeeded", job.kind)
    return 0


def main(argv: list[str]) -> int:
    job_id, attempt = argv[0], int(argv[1])
    from gristmill.logs import log_json

    log_json(stream=sys.stdout, job_id=job_id)
    return run(job_id, attempt)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
