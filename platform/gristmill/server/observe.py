"""What the server tells its operator: a request id per request, a JSON log line per request, and
the HTTP figures of ``/metrics``.

:class:`Observe` wraps the whole app (API and dashboard). Each request gets an id (its
``X-Request-ID`` when sane, else a new one), returned in the response's ``X-Request-ID`` and set in
:data:`gristmill.logs.REQUEST_ID` for every log line written while it is served, and kept on the
jobs it submits. Requests are counted and timed by route *template* (``/projects/{project}/train``,
never the raw path: no project, user or job name becomes a label).
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram

from gristmill.logs import REQUEST_ID, request_id

log = logging.getLogger("gristmill.server.requests")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REQUESTS = Counter("gristmill_http_requests", "API requests answered, by method, route template and "
                   "status.", ["method", "route", "status"])
LATENCY = Histogram("gristmill_http_request_duration_seconds", "Time to answer API requests, by method "
                    "and route template.", ["method", "route"], buckets=LATENCY_BUCKETS)
HTTP_COLLECTORS = (REQUESTS, LATENCY)
QUIET_ROUTES = {"/healthz", "/readyz", "/metrics"}   # probed every few seconds: counted, not logged


def route_of(scope: dict) -> str:
    """The template of the route that answered (``/jobs/{job}``); ``/ui/...`` for the dashboard's
    pages (the mount's routes, under its prefix); ``unmatched`` for a 404 of no route."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return "unmatched"
    prefix = scope.get("root_path", "") or ""
    app_root = scope.get("app_root_path", "") or ""
    if prefix and prefix != app_root and not template.startswith(prefix):
        template = prefix[len(app_root):] + template
    return template


class Observe:
    """ASGI middleware: request id, per-request JSON log line, HTTP metrics."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = request_id(incoming)
        token = REQUEST_ID.set(rid)
        status = {"code": 500}
        started = time.perf_counter()

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = dict(message, headers=[*message.get("headers", ()), (b"x-request-id", rid.encode())])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route, method = route_of(scope), scope.get("method", "")
            REQUESTS.labels(method, route, str(status["code"])).inc()
            LATENCY.labels(method, route).observe(seconds)
            if route not in QUIET_ROUTES:
                client = scope.get("client")
                log.info("%s %s %d", method, route, status["code"],
                         extra={"method": method, "route": route, "path": scope.get("path"),
                                "status": status["code"], "duration_ms": round(seconds * 1000, 2),
                                "client": client[0] if client else None})
            REQUEST_ID.reset(token)
