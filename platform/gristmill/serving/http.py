"""What every serving process answers the same way, whatever the endpoint: request size, the shape
of an error, the OpenAPI document, and one log line per refused request.

:class:`~gristmill.serving.guard.RequestGuard` applies all of it in front of a project's bento and
of the gateway:

- **Body size.** A request body larger than its limit is a ``413`` before anything reads it:
  :data:`DEFAULT_BODY_KB` (1 MiB) for single requests, :data:`DEFAULT_LIST_BODY_KB` (4 MiB) for
  the list endpoints (``/predict``, ``/predict_entities``, ``/predict_batched``: about 1,000 rows
  of 65 features, or 150,000 ids; larger batches are what ``gristmill predict`` is for). Set them
  with ``GRISTMILL_SERVING_MAX_BODY_KB`` and ``GRISTMILL_SERVING_MAX_LIST_BODY_KB``.
- **Errors.** Every error answer is one JSON object ``{"error": "<message>"}``, with ``detail``
  (a list of ``{loc, msg, type}``) for a body that fails the request schema; no user value is
  echoed beyond :data:`SHOWN_CHARS` characters.
- **OpenAPI.** ``/docs.json`` documents every status an endpoint answers (400, 401, 403, 404, 413,
  415, 422, 500) with that shape, and the bearer token every endpoint needs.
- **Logs.** A request refused with a 4xx is logged as one line (BentoML logs a full traceback);
  a 5xx keeps its traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from gristmill.errors import SHOWN_CHARS, shown  # noqa: F401  (at most 64 characters of a user value)

DEFAULT_BODY_KB = 1024
DEFAULT_LIST_BODY_KB = 4096
LIST_PATHS = {"/predict", "/predict_entities", "/predict_batched"}

ERROR_STATUSES = {
    400: "The body does not fit the request schema (detail says where) or is malformed.",
    401: "No, or an unknown, expired or revoked, bearer token.",
    403: "The token's role does not allow this endpoint.",
    404: "An unknown entity id, project or model (or a project the token has no role on).",
    413: "The request body is larger than the service's limit.",
    415: "The body is not JSON.",
    422: "The request is well-formed but cannot be answered as asked (the error says why).",
    500: "A fault of the service, never of the request: see the server log.",
}

ERROR_SCHEMA = {
    "type": "object", "title": "Error", "required": ["error"], "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "title": "Message"},
        "detail": {"type": "array", "title": "Error Detail", "description": "Where the body fails the "
                   "request schema (400 only).",
                   "items": {"type": "object", "additionalProperties": True,
                             "properties": {"loc": {"type": "array", "items": {}},
                                            "msg": {"type": "string"}, "type": {"type": "string"}}}},
    },
}


def body_limits() -> tuple[int, int]:
    """(single, list) request body limits in bytes, from the environment or the defaults."""
    from gristmill.config import positive_int_env

    return (positive_int_env("GRISTMILL_SERVING_MAX_BODY_KB", DEFAULT_BODY_KB, "kilobytes") * 1024,
            positive_int_env("GRISTMILL_SERVING_MAX_LIST_BODY_KB", DEFAULT_LIST_BODY_KB, "kilobytes") * 1024)


def too_large(limit: int) -> str:
    return (f"the request body is larger than this service takes ({limit // 1024:,} KB): send fewer "
            "rows or ids per request, or score a file with `gristmill predict`")


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, list):
        return [_cut(v) for v in value]
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    return value


def error_body(status: int, body: bytes) -> bytes:
    """An error answer in the documented shape: ``{"error": str, "detail"?: list}``, user values cut.

    BentoML answers a 4xx of its exceptions as ``[{"error": ...}]`` and a schema failure with
    ``detail`` as a list; anything else becomes ``{"error": <text>}``."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        data = data[0]
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        text = body.decode("utf-8", "replace").strip() if body else ""
        data = {"error": text or ERROR_STATUSES.get(status, "error")}
    out: dict[str, Any] = {"error": shown(data["error"], 400)}
    detail = data.get("detail")
    if isinstance(detail, list) and all(isinstance(d, dict) for d in detail):
        out["detail"] = [{"loc": _cut(d.get("loc", [])), "msg": shown(d.get("msg", ""), 300),
                          "type": shown(d.get("type", ""))} for d in detail[:20]]
    return json.dumps(out).encode()


def true_openapi(doc: dict) -> dict:
    """BentoML's OpenAPI document with every status the endpoints answer, in their real shape."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                       "description": "gristmill tokens create"}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if path in ("/healthz", "/livez", "/readyz"):
                continue
            responses = operation["responses"]
            if path == "/metrics":
                responses["200"] = {"description": "Prometheus text exposition",
                                    "content": {"text/plain": {"schema": {"type": "string"}}}}
                statuses = (401, 404)
            else:
                statuses = tuple(ERROR_STATUSES)
            for code in [k for k in responses if str(k)[0] in "45"]:
                del responses[code]
            for code in statuses:
                responses[str(code)] = {"description": ERROR_STATUSES[code], "content": error}
            operation["security"] = [{"bearer": []}]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            if body.get("schema", {}).get("required"):
                operation["requestBody"]["required"] = True  # no body is a 400, as answered
    return doc


class ClientErrorsInOneLine(logging.Filter):
    """BentoML logs every refused request with ``exc_info``: a traceback per 404. A client error
    (pydantic's ValidationError, a BentoML exception below 500) becomes one line, without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        status = _client_status(exc)
        if status is None:
            return True
        path = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg, record.args = "%s %s: %s", (status, shown(path), shown(str(exc).splitlines()[0], 200))
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _client_status(exc: BaseException) -> int | None:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return 400
    code = getattr(getattr(exc, "error_code", None), "value", None)
    if isinstance(code, int) and 400 <= code < 500:
        return code
    return None


_FILTER = ClientErrorsInOneLine()


def quiet_client_errors() -> None:
    """Install :class:`ClientErrorsInOneLine` on BentoML's request logger (once per process)."""
    for name in ("bentoml._internal.server.http_app", "bentoml.serve"):
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)
