"""The FastAPI application: one route per operation, a bearer-token dependency on every one."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi import Body, Depends, FastAPI, File, Path, Query, Request, Security, UploadFile
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, create_model

from gristmill.errors import GristmillError, Unauthenticated
from gristmill.identity.principal import Principal
from gristmill.workspace import Workspace

log = logging.getLogger("gristmill.server")
OPEN_ROUTES = {"/healthz", "/readyz", "/metrics", "/auth/token", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


class ErrorBody(BaseModel):
    """Every error: one line saying what to change, and its kind."""

    error: str
    code: str


ERRORS = {status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 422)}


def create_app(ws: Workspace | None = None) -> FastAPI:
    """The API over ``ws`` (default: the workspace the environment names)."""
    from gristmill import __version__
    from gristmill.services import Context, invoke, load_all

    ws = (ws or Workspace.resolve()).ensure()
    import os

    if os.environ.get("GRISTMILL_LOG_JSON") == "1":   # `gristmill server`, in each of its processes
        from gristmill.logs import log_json

        log_json()
    app = FastAPI(title="Gristmill", version=__version__,
                  description="Users, projects, data, features, models, serving and monitoring of a "
                              "Gristmill workspace. Authenticate with `Authorization: Bearer <token>`.")
    bearer = HTTPBearer(auto_error=False, description="An API token (`gristmill tokens create`).")

    def principal(credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        from gristmill.config import metadata
        from gristmill.identity.store import authenticate

        return authenticate(metadata(ws), credentials.credentials if credentials else None)

    @app.exception_handler(GristmillError)
    async def _known(_request: Request, exc: GristmillError):
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        return JSONResponse({"error": str(exc), "code": type(exc).__name__}, exc.http_status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail), "code": "HTTPError"}, exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}", "code": "InvalidRequest"}, 422)

    @app.get("/healthz", tags=["probes"], summary="The process is up.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], summary="The metadata database answers.",
             responses={503: {"model": ErrorBody}})
    def readyz():
        from gristmill.config import metadata

        try:
            metadata(ws).ping()
        except Exception as exc:  # not ready: say why, without the URL (it may hold a password)
            return JSONResponse({"error": f"metadata database: {type(exc).__name__}", "code": "NotReady"}, 503)
        return {"status": "ready"}

    from gristmill.config import load_config
    from gristmill.jobs.metrics import exposition, workspace_registry

    registry = workspace_registry(ws)
    metrics_guard = [Depends(principal)] if load_config(ws).server.metrics_need_token else []

    @app.get("/metrics", tags=["probes"], summary="Prometheus metrics: the job queue, this process's "
             "HTTP requests by route template. No project or user names.", response_class=Response,
             dependencies=metrics_guard)
    def prometheus_metrics() -> Response:
        body, kind = exposition(registry)
        return Response(body, media_type=kind)

    for op in load_all().values():
        _add_route(app, op, ws, principal, Context, invoke)
    from gristmill.dashboard import mount

    mount(app, ws)   # the web dashboard under /ui (its own sessions; the same operations)
    from gristmill.server.observe import Observe

    app.add_middleware(Observe)   # request ids, a JSON log line and the HTTP metrics of every request
    return app


def _add_route(app: FastAPI, op, ws: Workspace, principal, Context, invoke) -> None:
    params, types = op.params, op.types
    path_names = op.path_params
    body_names = [n for n in params if n not in path_names and n != "files"]
    signature: list[inspect.Parameter] = []
    kw = inspect.Parameter.KEYWORD_ONLY
    for name in path_names:
        signature.append(inspect.Parameter(name, kw, annotation=str, default=Path(..., max_length=128)))
    model = None
    if op.method in ("POST", "PUT") and body_names and not op.upload:
        fields = {n: (types[n], ... if params[n].default is inspect.Parameter.empty
                      else params[n].default) for n in body_names}
        model = create_model(f"{op.name.replace('.', '_').title().replace('_', '')}Body",
                             __config__=ConfigDict(extra="forbid"), **fields)
        required = any(params[n].default is inspect.Parameter.empty for n in body_names)
        signature.append(inspect.Parameter("body", kw, annotation=model,
                                           default=Body(...) if required else Body(None)))
    elif body_names:
        for name in body_names:
            default = params[name].default
            signature.append(inspect.Parameter(
                name, kw, annotation=types[name],
                default=Query(... if default is inspect.Parameter.empty else default)))
    if op.upload:
        signature.append(inspect.Parameter("files", kw, annotation=list[UploadFile],
                                           default=File(..., description="Files; names may hold folders.")))
    if not op.open:
        signature.append(inspect.Parameter("caller", kw, annotation=Principal, default=Depends(principal)))

    def endpoint(**kwargs: Any):
        caller = kwargs.pop("caller", None)
        body = kwargs.pop("body", None)
        if body is not None:
            kwargs.update(body.model_dump(exclude_unset=False))
        elif model is not None:
            kwargs.update({n: params[n].default for n in body_names})
        if op.upload:
            kwargs["files"] = [(f.filename or "upload", f.file) for f in kwargs["files"]]
        who = caller or Principal(name="anonymous", kind="anonymous")
        from gristmill.logs import REQUEST_ID

        return invoke(Context(ws, who, submit_jobs=True, request_id=REQUEST_ID.get()), op.name, **kwargs)

    endpoint.__signature__ = inspect.Signature(signature)
    endpoint.__name__ = op.name.replace(".", "_")
    endpoint.__doc__ = inspect.getdoc(op.fn)
    tag = op.name.split(".")[0]
    app.add_api_route(op.path, endpoint, methods=[op.method], summary=op.summary, tags=[tag],
                      name=op.name, operation_id=op.name.replace(".", "_"),
                      response_model=dict[str, Any], responses=ERRORS)
