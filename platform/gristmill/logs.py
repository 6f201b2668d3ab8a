"""Structured logs: one JSON object per line, with the request and the job each line belongs to.

The server and every job's process write these lines (``gristmill server`` on stderr, a job on
stdout, which its worker copies into the job's log). ``request_id`` comes from
:data:`REQUEST_ID`, set per API request (the ``X-Request-ID`` it came with, or a new one) and, on a
worker, from the job that request submitted: one id follows a training from the HTTP call to the
worker's log lines.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from typing import Any

#: the API request the current code serves (None outside one)
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("gristmill_request_id", default=None)
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
#: attributes a record may carry (``log.info(..., extra={...})``) that the JSON line keeps
FIELDS = ("request_id", "job", "worker", "project", "user", "method", "route", "path", "status",
          "duration_ms", "client")


def request_id(incoming: str | None) -> str:
    """The id of a request: the caller's ``X-Request-ID`` when it is sane (1-64 letters, digits,
    ``._:-``; it is logged and stored, so nothing else is taken), else a new random one."""
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return secrets.token_hex(8)


class JsonLines(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, job and request when known, the
    :data:`FIELDS` a record carries, and the exception's last 2,000 characters."""

    def __init__(self, job_id: str | None = None) -> None:
        super().__init__()
        self.job_id = job_id

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        if self.job_id:
            out["job"] = self.job_id
        current = REQUEST_ID.get()
        if current:
            out["request_id"] = current
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)[-2000:]
        return json.dumps(out, default=str)


def log_json(level: int = logging.INFO, stream=None, job_id: str | None = None,
             quiet: tuple[str, ...] = ("mlflow", "alembic", "urllib3", "httpx", "feast", "bentoml",
                                       "numexpr", "uvicorn.access")) -> logging.Handler:
    """Send every log record of the process to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines(job_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own lines: through the root, as JSON
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
