"""The door of every serving process (a project's bento, the gateway): who calls, and may they.

Every access is decided by :func:`gristmill.identity.policy.authorize` with ``Action.predict``
(the viewer role or better); nothing here grants anything by itself. Default deny:

- Every path but the probes (``/healthz``, ``/livez``, ``/readyz``) and the schema (``/``,
  ``/docs``, ``/docs.json``, static files) needs ``Authorization: Bearer <token>``: a user token
  or a project-scoped token (``gristmill tokens create``). No, a malformed, unknown, expired or
  revoked token, or a disabled user: ``401`` with ``WWW-Authenticate: Bearer``.
- A project's bento authorizes every request for its project: no role there is ``404`` (as for a
  project that does not exist), a role too low ``403``.
- The gateway authenticates here; the project comes in each request's body, so each endpoint
  asks :func:`allow` (``404`` for a project the caller has no role on, the same answer as for an
  unknown one) and ``/projects`` lists :func:`visible` ones only.
- ``/metrics`` needs a valid token too. On a project's bento the caller needs viewer on the
  project; on the gateway the lines labelled with a project (``gristmill_predictions_total``,
  ``gristmill_prediction_seconds``) are cut to the projects the caller may see. BentoML serves
  ``/metrics`` from the same Starlette app as the endpoints, inside this middleware, so the guard
  reads and filters its body.
- ``serving.api_token_env``: a request carrying that variable's value is a ``service`` principal,
  viewer on this project only (a shared secret: weaker than per-user tokens, see the spec field).
- A POST whose body is not JSON gets ``415`` (BentoML's own parsers would answer a malformed
  multipart body with a 500).
- A body past its size limit gets ``413`` before anything reads it; every error answer is one
  ``{"error": ...}`` object with user values cut; ``/docs.json`` documents every status; a 4xx is
  one log line (:mod:`gristmill.serving.http`).

Checking a token and a role reads the metadata database (about 0.3-0.4 ms on SQLite, a network
round trip on PostgreSQL), so each serving process remembers what it learned for
:data:`CACHE_SECONDS`: **a revoked or expired token, a disabled user or a removed role stops
working within 2 s.** The caches are bounded (:data:`CACHE_SIZE` entries each) and live in the
serving process only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, Callable

from gristmill.errors import GristmillError, Unauthenticated
from gristmill.identity.principal import Principal
from gristmill.identity.roles import Action, Role
from gristmill.serving.http import (LIST_PATHS, body_limits, error_body, quiet_client_errors, shown,
                                    too_large, true_openapi)

PROBES = {"/healthz", "/livez", "/readyz"}
SCHEMA = {"/", "/docs", "/docs.json"}
JSON_TYPES = ("application/json", "text/json")
CACHE_SECONDS = 2.0
CACHE_SIZE = 4096

#: The caller of the request being served: (its :class:`Access`, its principal), set by the guard.
CALLER: ContextVar[tuple["Access", Principal] | None] = ContextVar("gristmill_serving_caller", default=None)


class _TTLCache:
    """At most ``size`` entries, each kept ``ttl`` seconds; oldest dropped first."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl, self.size = ttl, size
        self._items: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found[0] <= time.monotonic():
                del self._items[key]
                return None
            return found[1]

    def put(self, key: Any, value: Any) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class Access:
    """Authentication and the policy check for one serving process, behind short caches.

    ``project`` is the bento's project (None for the gateway); ``static_token`` the value of
    ``serving.api_token_env``, if the spec names one."""

    def __init__(self, project: str | None = None, static_token: str | None = None, ws=None,
                 ttl: float = CACHE_SECONDS, size: int = CACHE_SIZE) -> None:
        self.project, self.static_token, self._ws = project, static_token, ws
        self._principals = _TTLCache(ttl, size)
        self._roles = _TTLCache(ttl, size)
        self._md = None

    @property
    def md(self):
        """The workspace's metadata database (one engine per process: gristmill.config caches it)."""
        if self._md is None:
            from gristmill.config import metadata
            from gristmill.workspace import Workspace

            self._md = metadata(self._ws or Workspace.resolve())
        return self._md

    def _static(self, token: str) -> Principal | None:
        if self.static_token and hmac.compare_digest(token.encode(), self.static_token.encode()):
            return self.service_principal()
        return None

    def principal(self, token: str | None) -> Principal:
        """Who ``token`` stands for; :class:`~gristmill.errors.Unauthenticated` for anything else."""
        from gristmill.identity.store import authenticate

        token = (token or "").strip()
        found = (self._static(token) or self._principals.get(_key(token))) if token else None
        if found is None:
            found = authenticate(self.md, token)
            self._principals.put(_key(token), found)
        return found

    def service_principal(self) -> Principal:
        """The holder of the ``serving.api_token_env`` secret: viewer on this project only."""
        return Principal(name=f"service:{self.project}", kind="service", scope_project=self.project,
                         scope_role=Role.viewer)

    def allow(self, principal: Principal, project: str) -> Role:
        """:func:`~gristmill.identity.policy.authorize` ``predict`` on ``project`` (its NoAccess or
        Forbidden raised); an allowed pair is remembered, a refusal asked again every time."""
        from gristmill.identity.policy import authorize

        role = self._roles.get((principal, project))
        if role is None:
            role = authorize(self.md, principal, Action.predict, project)
            self._roles.put((principal, project), role)
        return role

    def remembered(self, token: str, project: str | None) -> Principal | None:
        """The caller, if this process let ``token`` in (on ``project``) in the last seconds: no
        database read needed. None: ask :meth:`principal` and :meth:`allow`."""
        token = token.strip()
        principal = self._static(token) or self._principals.get(_key(token))
        if principal is None or (project is not None and self._roles.get((principal, project)) is None):
            return None
        return principal

    def visible(self, principal: Principal, names: list[str]) -> list[str]:
        """Those of ``names`` the caller may see (:func:`~gristmill.identity.policy.visible_projects`)."""
        from gristmill.identity.policy import visible_projects

        key = (principal, tuple(sorted(names)))
        found = self._roles.get(key)
        if found is None:
            found = tuple(visible_projects(self.md, principal, list(names)))
            self._roles.put(key, found)
        return list(found)


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def caller() -> tuple[Access, Principal]:
    """The access checker and the principal of the request being served (set by the guard)."""
    found = CALLER.get()
    if found is None:  # no guard in front of this service: nobody is let in
        raise Unauthenticated("this service has no request guard: give an API token")
    return found


def allow(project: str) -> Role:
    """The caller's role on ``project`` if it allows predictions, else NoAccess (404) / Forbidden (403)."""
    from gristmill.workspace import check_project_name

    check_project_name(project)  # a malformed name is a 400, whoever asks
    access, principal = caller()
    return access.allow(principal, project)


def require(project: str, action: str) -> Role:
    """The caller's role on ``project`` if it allows ``action`` (asked every time, never cached:
    changes are rare and a revoked role must stop them at once)."""
    from gristmill.identity.policy import authorize

    access, principal = caller()
    return authorize(access.md, principal, Action(action), project)


def visible(names: list[str]) -> list[str]:
    """Those of ``names`` the caller may see."""
    access, principal = caller()
    return access.visible(principal, names)


def bearer(headers: dict[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


PROJECT_LABEL = re.compile(r'[{,]\s*project="((?:[^"\\]|\\.)*)"')


def metric_projects(text: str) -> set[str]:
    """The values of every ``project`` label in a Prometheus text exposition."""
    return {m.group(1) for line in text.splitlines() if not line.startswith("#")
            for m in PROJECT_LABEL.finditer(line.split("}", 1)[0] + "}")}


def filter_metrics(text: str, keep: set[str]) -> str:
    """The exposition without the samples labelled with a project outside ``keep``."""
    out = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            found = PROJECT_LABEL.search(line.split("}", 1)[0] + "}")
            if found and found.group(1) not in keep:
                continue
        out.append(line)
    return "".join(out)


class RequestGuard:
    """ASGI middleware in front of a BentoML service: authentication, the policy check, JSON only.

    ``project``: the bento's project (every request is authorized for it); None for the gateway
    (its endpoints call :func:`allow`). ``token``: the value of ``serving.api_token_env``, if any."""

    def __init__(self, app, project: str | None = None, token: str | None = None,
                 access: Access | None = None) -> None:
        if token and not project:
            raise GristmillError("a shared API token needs the project it is for (the gateway takes "
                                 "users' and project tokens only: gristmill tokens create)")
        self.app, self.project = app, project
        self.access = access or Access(project, token)
        self.limits = body_limits()  # (single, list endpoints) in bytes
        quiet_client_errors()  # a refused request is one log line

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path == "/docs.json":
            return await self.app(scope, receive, _rewrite_body(send, _openapi))
        if path in PROBES or path in SCHEMA or path.startswith("/static"):
            return await self.app(scope, receive, send)
        send = _rewrite_body(send, error_body, errors_only=True)  # one error shape, values cut
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            principal, role_error = await self._check(bearer(headers))
        except Unauthenticated as exc:
            return await _reply(send, 401, str(exc), {"www-authenticate": "Bearer"})
        if role_error is not None:
            return await _reply(send, role_error.http_status, str(role_error))
        if scope["method"] == "POST":
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind and kind not in JSON_TYPES:
                return await _reply(send, 415, f"send the request body as JSON (Content-Type: "
                                               f"application/json), not {shown(kind)}")
        limit = self.limits[1] if path in LIST_PATHS else self.limits[0]
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await _reply(send, 413, too_large(limit))
        if not declared.isdigit() and scope["method"] in ("POST", "PUT", "PATCH"):
            receive = await _bounded(receive, limit)  # chunked: read it here, up to the limit
            if receive is None:
                return await _reply(send, 413, too_large(limit))
        CALLER.set((self.access, principal))
        if path == "/metrics":
            return await self.app(scope, receive, self._metrics_filter(principal, send))
        return await self.app(scope, receive, send)

    async def _check(self, token: str | None) -> tuple[Principal, GristmillError | None]:
        """The caller, and the error of their access to this bento's project (None: allowed)."""
        access, project = self.access, self.project
        known = access.remembered(token, project) if token else None
        if known is not None:
            return known, None  # all in memory: no thread hop

        def check():
            principal = access.principal(token)
            if project is not None:
                try:
                    access.allow(principal, project)
                except GristmillError as exc:  # NoAccess (404), Forbidden (403)
                    return principal, exc
            return principal, None

        import anyio

        return await anyio.to_thread.run_sync(check)  # reads the metadata database

    def _metrics_filter(self, principal: Principal, send: Callable):
        """A ``send`` that holds back ``/metrics``' body and drops the lines of projects the caller
        may not see (on a bento: every project but its own)."""
        start: dict | None = None
        chunks: list[bytes] = []

        async def filtered(message):
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            assert start is not None
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            if any(k.lower() == b"content-encoding" for k, _ in headers):  # cannot read it: show nothing
                return await _reply(send, 500, "the metrics came compressed and cannot be filtered")
            text = b"".join(chunks).decode("utf-8")
            if self.project is not None:
                keep = {self.project}
            else:
                import anyio

                names = sorted(metric_projects(text))
                keep = set(await anyio.to_thread.run_sync(self.access.visible, principal, names))
            body = filter_metrics(text, keep).encode("utf-8")
            await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        return filtered


def _openapi(status: int, body: bytes) -> bytes:
    if status != 200:
        return body
    return json.dumps(true_openapi(json.loads(body))).encode()


def _rewrite_body(send: Callable, rewrite: Callable[[int, bytes], bytes], errors_only: bool = False):
    """A ``send`` that holds back a JSON answer's body and sends ``rewrite(status, body)`` instead
    (with ``errors_only``: only answers of status 400 and above; others stream through)."""
    start: dict | None = None
    chunks: list[bytes] = []

    async def rewritten(message):
        nonlocal start
        if message["type"] == "http.response.start":
            held = message["status"] >= 400 or not errors_only
            kind = dict(message.get("headers", [])).get(b"content-type", b"")
            encoded = any(k.lower() == b"content-encoding" for k, _ in message.get("headers", []))
            if held and not encoded and (kind.startswith(b"application/json") or message["status"] >= 400):
                start = message
                return
            return await send(message)
        if start is None or message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = rewrite(start["status"], b"".join(chunks))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return rewritten


async def _bounded(receive: Callable, limit: int):
    """Read a body of unknown length up to ``limit`` bytes: a ``receive`` that replays it, or None
    when it is larger."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        size += len(message.get("body", b""))
        if size > limit:
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replayed():
        return replay.pop() if replay else await receive()

    return replayed


async def _reply(send, status: int, message: str, extra: dict | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def token_from_env(variable: str | None) -> str | None:
    """The shared API token named by the spec, or None; a named but empty variable is a mistake."""
    import os

    if not variable:
        return None
    value = os.environ.get(variable, "")
    if not value:
        raise GristmillError(f"serving.api_token_env names {variable!r}, which is not set: export "
                             f"{variable}=<token> before starting the service (or remove the key)")
    return value
