"""An ASGI middleware in front of a project's BentoML service: JSON only, and an optional API token.

- A POST to a prediction endpoint whose body is not JSON gets ``415`` with a message (BentoML's
  own parsers would answer a malformed multipart body with a 500).
- With ``serving.api_token_env`` in the spec, every endpoint but the health, readiness and
  metrics probes needs ``Authorization: Bearer <token>``, the token being that environment
  variable's value at start-up; otherwise ``401``.
"""

from __future__ import annotations

import hmac
import json

OPEN_PATHS = {"/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/docs", "/"}
JSON_TYPES = ("application/json", "text/json")


class RequestGuard:
    """ASGI middleware; ``token`` None means no authentication."""

    def __init__(self, app, token: str | None = None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token and path not in OPEN_PATHS and not path.startswith("/static"):
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return await _reply(send, 401, "give the service's API token: Authorization: Bearer <token>",
                                    {"www-authenticate": "Bearer"})
        if scope["method"] == "POST" and path not in OPEN_PATHS:
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind and kind not in JSON_TYPES:
                return await _reply(send, 415, f"send the request body as JSON (Content-Type: "
                                               f"application/json), not {kind}")
        return await self.app(scope, receive, send)


async def _reply(send, status: int, message: str, extra: dict | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def token_from_env(variable: str | None) -> str | None:
    """The API token named by the spec, or None; a named but empty variable is a mistake."""
    import os

    from gristmill.errors import GristmillError

    if not variable:
        return None
    value = os.environ.get(variable, "")
    if not value:
        raise GristmillError(f"serving.api_token_env names {variable!r}, which is not set: export "
                             f"{variable}=<token> before starting the service (or remove the key)")
    return value
