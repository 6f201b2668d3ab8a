"""One call for every CLI command: :func:`call` runs an operation locally or through the server."""

from __future__ import annotations

import contextlib
import os
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.errors import GristmillError


class ServerError(GristmillError):
    """The server refused or failed a call; the message is the server's."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.http_status = status


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None


_LOCAL: ContextVar[bool] = ContextVar("gristmill_force_local", default=False)


@contextlib.contextmanager
def local_only():
    """Calls in this block run locally even with a server configured (the demo's own workspace)."""
    token = _LOCAL.set(True)
    try:
        yield
    finally:
        _LOCAL.reset(token)


def server_target() -> Target | None:
    """The server to go through: ``GRISTMILL_URL`` (+ ``GRISTMILL_TOKEN``), else the stored login."""
    from gristmill.client import credentials

    if _LOCAL.get():
        return None
    url = os.environ.get("GRISTMILL_URL", "").strip()
    if url:
        token = os.environ.get("GRISTMILL_TOKEN") or None
        stored = credentials.load()
        if token is None and stored and stored["url"].rstrip("/") == url.rstrip("/"):
            token = stored["token"]
        return Target(url.rstrip("/"), token)
    stored = credentials.load()
    return Target(stored["url"].rstrip("/"), stored["token"]) if stored else None


_DETACH: ContextVar[dict | None] = ContextVar("gristmill_job_options", default=None)


@contextlib.contextmanager
def job_options(detach: bool = False, slots: int | None = None, memory_mb: int | None = None):
    """Long calls in this block, when they go through the server, return the job at once
    (``detach``) or ask the worker for ``slots`` slots and ``memory_mb`` of memory."""
    token = _DETACH.set({"detach": detach, "slots": slots, "memory_mb": memory_mb})
    try:
        yield
    finally:
        _DETACH.reset(token)


def call(name: str, /, progress: bool = False, **params: Any) -> Any:
    """Run operation ``name``: through the server when one is configured, else locally. Through
    the server a long operation runs as a job on a worker: this follows it (a progress bar when
    ``progress``) and returns its result, or returns the job at once under ``job_options(detach=True)``."""
    target = server_target()
    if target is None:
        from gristmill.services import Context, invoke

        return invoke(Context.local(progress=progress), name, **params)
    from gristmill.services.registry import get

    if not get(name).job:
        return remote(target, name, **params)
    options = _DETACH.get() or {}
    job = remote(target, "jobs.submit", kind=name,
                 params={k: (v.value if hasattr(v, "value") else v) for k, v in params.items() if v is not None},
                 slots=options.get("slots") or 1, memory_mb=options.get("memory_mb"))
    if options.get("detach"):
        return job
    from gristmill.client.follow import follow

    return follow(job, lambda j: remote(target, "jobs.show", job=j),
                  lambda j, since: remote(target, "jobs.logs", job=j, since=since), show=progress)


def remote(target: Target, name: str, /, timeout: float = 3600.0, **params: Any) -> Any:
    """Call operation ``name`` over HTTP (the route the server generated from it)."""
    import httpx

    from gristmill.services.registry import get

    op = get(name)
    path = op.path.format(**{k: params.pop(k) for k in op.path_params})
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    values = {k: (v.value if hasattr(v, "value") else v) for k, v in params.items() if v is not None}
    request: dict[str, Any] = {}
    if op.upload:
        request["files"] = [("files", (fname, stream)) for fname, stream in values.pop("files")]
    elif op.method == "GET":
        request["params"] = values
    elif values:
        request["json"] = values
    try:
        with httpx.Client(base_url=target.url, headers=headers, timeout=timeout) as client:
            response = client.request(op.method, path, **request)
    except httpx.HTTPError as exc:
        raise GristmillError(f"cannot reach the Gristmill server at {target.url} ({type(exc).__name__}): "
                             "start it with `gristmill server`, or unset GRISTMILL_URL / "
                             "`gristmill logout` to work locally") from None
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code >= 400:
        raise ServerError(_message(body, response.status_code), response.status_code)
    return body


def _message(body: Any, status: int) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    if isinstance(body, dict) and isinstance(body.get("detail"), list) and body["detail"]:
        first = body["detail"][0]
        where = ".".join(str(p) for p in first.get("loc", [])[1:])
        return f"the server refused the request ({status}): {where}: {first.get('msg')}"
    return f"the server answered {status}"


def upload_paths(paths: list[Path]) -> list[tuple[str, Any]]:
    """Files to upload, named relative to the folder given (a folder keeps its inner layout)."""
    out = []
    for root in paths:
        if root.is_dir():
            for file in sorted(p for p in root.rglob("*") if p.is_file()):
                out.append((str(file.relative_to(root)), file.open("rb")))
        elif root.is_file():
            out.append((root.name, root.open("rb")))
        else:
            raise GristmillError(f"no such file or folder: {root}")
    return out
