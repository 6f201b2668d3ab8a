"""Routes of the dashboard: sign-in, pages, and the few form posts (each one an operation)."""

from __future__ import annotations

import hmac
import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from gristmill.errors import Forbidden, GristmillError, Unauthenticated
from gristmill.workspace import Workspace, owner_only_file

COOKIE = "gm_session"
LOGIN_CSRF = "gm_login_csrf"
SESSION_SECONDS = 8 * 3600
SESSION_EXPIRES = "8h"
PAGES = ("data", "features", "training", "models", "deployments", "monitoring", "jobs", "audit")
MOVES = ("promote", "rollback", "challenge")
CHART_RUNS = 1000   # runs the training page's charts and leaderboard read at most
HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'")


class _SignIn(Exception):
    """No valid session: go to the sign-in page."""


def secret(ws: Workspace) -> bytes:
    """The key that signs session cookies: ``<workspace>/dashboard.secret``, owner-only."""
    path = ws.root / "dashboard.secret"
    if not path.is_file() or not path.read_text().strip():
        owner_only_file(path)
        path.write_text(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return path.read_text().strip().encode()


def secure_cookie() -> bool:
    """The Secure flag: on behind HTTPS (``GRISTMILL_DASHBOARD_SECURE_COOKIE=1``); off by default
    since the server listens on plain HTTP on 127.0.0.1."""
    return os.environ.get("GRISTMILL_DASHBOARD_SECURE_COOKIE", "").lower() in ("1", "true", "yes")


def plotly_js() -> Path:
    """plotly.min.js from the installed ``plotly`` package (MIT licence)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise GristmillError("the dashboard's charts need the plotly package: uv sync")
    return Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"


def mount(app: FastAPI, ws: Workspace) -> None:
    """Add the dashboard to the API app: ``/ui/...``, and ``/`` redirecting there."""
    app.mount("/ui", create_dashboard(ws))

    async def root(_request: Request):
        return RedirectResponse("/ui/", status_code=303)

    app.add_route("/", root, methods=["GET"], include_in_schema=False)


def create_dashboard(ws: Workspace) -> FastAPI:
    from itsdangerous import BadSignature, URLSafeTimedSerializer
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from gristmill.config import metadata
    from gristmill.identity.store import authenticate
    from gristmill.services import Context, invoke
    from gristmill.services.registry import get

    signer = URLSafeTimedSerializer(secret(ws), salt="gristmill-dashboard-session")
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters["json_script"] = _json_script   # data for app.js inside <script type=application/json>
    env.filters["as_json"] = lambda v: json.dumps(v, default=str)   # shown text (autoescaped as usual)
    env.filters["when"] = _when
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def _server_timing(request: Request, call_next):
        """``Server-Timing: page;dur=<ms>``: the server's own time for each page (bench/ reads it)."""
        import time

        started = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"page;dur={(time.perf_counter() - started) * 1000:.2f}"
        return response

    # -- sessions --------------------------------------------------------------------------------
    def session(request: Request) -> dict:
        raw = request.cookies.get(COOKIE)
        if not raw:
            raise _SignIn()
        try:
            data = signer.loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:
            raise _SignIn() from None
        return data

    def context(request: Request) -> tuple[Context, dict]:
        data = session(request)
        try:
            who = authenticate(metadata(ws), data["token"])
        except Unauthenticated:
            raise _SignIn() from None
        return Context(ws, who), data

    def check_csrf(data: dict, given: str) -> None:
        if not given or not hmac.compare_digest(str(data.get("csrf", "")), given):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")

    def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                            secure=secure_cookie(), path="/ui")

    def render(name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = env.get_template(name).render(**values)
        return HTMLResponse(html, status, headers={"Content-Security-Policy": CSP,
                                                   "X-Content-Type-Options": "nosniff",
                                                   "Referrer-Policy": "same-origin", "Cache-Control": "no-store"})

    @app.exception_handler(_SignIn)
    async def _to_sign_in(request: Request, _exc: _SignIn):
        target = "/ui/login"
        if request.method == "GET" and request.url.path not in ("/ui/", "/ui/login"):
            target += "?next=" + quote(request.url.path)
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    @app.exception_handler(GristmillError)
    async def _refused(request: Request, exc: GristmillError):
        return render("error.html", exc.http_status, message=str(exc), code=type(exc).__name__, user=None,
                      project=request.path_params.get("project"))

    # -- sign in / out ---------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_page(next: str = "/ui/", error: str | None = None):
        token = secrets.token_urlsafe(24)
        response = render("login.html", csrf=token, next=_local(next), error=error, user=None, project=None)
        set_cookie(response, LOGIN_CSRF, token, 3600)
        return response

    @app.post("/login")
    def login(request: Request, csrf: str = Form(""), name: str = Form(""), password: str = Form(""),
              token: str = Form(""), next: str = Form("/ui/")):
        expected = request.cookies.get(LOGIN_CSRF, "")
        if not csrf or not expected or not hmac.compare_digest(csrf, expected):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")
        try:
            if token.strip():
                who = authenticate(metadata(ws), token.strip())   # the user's own token, kept as given
                data = {"token": token.strip(), "own": False, "user": who.name}
            else:
                from gristmill.identity.principal import Principal

                anonymous = Context(ws, Principal(name="anonymous", kind="anonymous"))
                made = invoke(anonymous, "auth.login", name=name.strip(), password=password,
                              expires=SESSION_EXPIRES)
                data = {"token": made["token"], "token_id": made["id"], "own": True, "user": name.strip()}
        except Unauthenticated as exc:
            return RedirectResponse(f"/ui/login?error={quote(str(exc))}&next={quote(_local(next))}", 303)
        data["csrf"] = secrets.token_urlsafe(24)
        response = RedirectResponse(_local(next), status_code=303)
        set_cookie(response, COOKIE, signer.dumps(data), SESSION_SECONDS)
        response.delete_cookie(LOGIN_CSRF, path="/ui")
        return response

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")):
        ctx, data = context(request)
        check_csrf(data, csrf)
        if data.get("own") and data.get("token_id"):
            invoke(ctx, "tokens.revoke", token_id=data["token_id"])
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    # -- assets ----------------------------------------------------------------------------------
    @app.get("/static/{name}")
    def static(name: str):
        path = HERE / "static" / name
        if name not in {p.name for p in (HERE / "static").iterdir()}:
            raise GristmillError(f"no static file {name!r}")
        return FileResponse(path, headers={"Cache-Control": "max-age=3600"})

    @app.get("/vendor/plotly.min.js")
    def plotly():
        return FileResponse(plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "max-age=86400"})

    # -- pages -----------------------------------------------------------------------------------
    def page(request: Request, template: str, project: str | None = None, **values: Any) -> HTMLResponse:
        ctx, data = values.pop("_ctx")
        return render(template, user=ctx.principal, csrf=data["csrf"], project=project, pages=PAGES,
                      path=request.url.path, **values)

    @app.get("/", response_class=HTMLResponse)
    def projects(request: Request):
        ctx, data = context(request)
        rows = invoke(ctx, "projects.list")["projects"]
        for row in rows:
            row["status"] = _status(ctx, invoke, row["project"])
        return page(request, "projects.html", _ctx=(ctx, data), rows=rows)

    @app.get("/p/{project}", response_class=HTMLResponse)
    def project_home(project: str):
        return RedirectResponse(f"/ui/p/{quote(project)}/data", status_code=303)

    @app.get("/p/{project}/{name}", response_class=HTMLResponse)
    def project_page(request: Request, project: str, name: str, offset: int = 0, limit: int = 100,
                     actor: str | None = None, action: str | None = None, state: str | None = None):
        if name not in PAGES:
            raise GristmillError(f"no page {name!r}; pages: {', '.join(PAGES)}") from None
        ctx, data = context(request)
        role = invoke(ctx, "whoami")["projects"].get(project)
        invoke(ctx, "projects.members", project=project)   # the policy check for every page (404/403)
        values = LOADERS[name](ctx, invoke, get, project, offset=max(0, offset), limit=max(1, min(limit, 500)),
                               actor=actor or None, action=action or None, state=state or None)
        editor = role in ("editor", "owner") or ctx.principal.is_admin
        return page(request, f"{name}.html", project, _ctx=(ctx, data), role=role, editor=editor,
                    mlflow=os.environ.get("GRISTMILL_MLFLOW_UI"), evidently=os.environ.get("GRISTMILL_EVIDENTLY_UI"),
                    **values)

    @app.get("/p/{project}/monitoring/report", response_class=HTMLResponse)
    def report(request: Request, project: str):
        ctx, _data = context(request)
        runs = invoke(ctx, "monitor.history", project=project, limit=20)["runs"]
        html = next((r.get("html_path") for r in reversed(runs) if r.get("html_path")), None)
        if not html:
            raise GristmillError("no Evidently report yet: run `gristmill monitor run`")
        path = Path(html).resolve()
        if not path.is_file() or not path.is_relative_to(ws.reports(project).resolve()):
            raise GristmillError("the latest Evidently report's file is gone")
        # Evidently's report runs its own inline scripts: it is served alone, sandboxed in an iframe
        return HTMLResponse(path.read_text(encoding="utf-8"), headers={
            "Content-Security-Policy": "sandbox allow-scripts; default-src 'self' 'unsafe-inline' data: blob:",
            "X-Content-Type-Options": "nosniff"})

    @app.post("/p/{project}/models/{move}")
    def move_model(request: Request, project: str, move: str, csrf: str = Form(""), version: str = Form("")):
        if move not in MOVES:
            raise GristmillError(f"no model action {move!r}; known: {', '.join(MOVES)}")
        ctx, data = context(request)
        check_csrf(data, csrf)
        params: dict[str, Any] = {"project": project}
        if move == "promote":
            params["version"] = version or None
        elif move == "challenge":
            params["version"] = version
        elif version:
            params["to"] = version
        invoke(ctx, f"models.{move}", **params)
        return RedirectResponse(f"/ui/p/{quote(project)}/models", status_code=303)

    @app.post("/p/{project}/jobs/{job}/cancel")
    def cancel_job(request: Request, project: str, job: str, csrf: str = Form("")):
        ctx, data = context(request)
        check_csrf(data, csrf)
        get("jobs.cancel")
        invoke(ctx, "jobs.cancel", job=job)
        return RedirectResponse(f"/ui/p/{quote(project)}/jobs", status_code=303)

    return app


def _local(target: str) -> str:
    """Only a path inside the dashboard (no open redirect)."""
    return target if target.startswith("/ui/") and "//" not in target and "\\" not in target else "/ui/"


def _json_script(value: Any):
    """JSON for a ``<script type="application/json">`` block: not HTML-escaped (a script element's
    text is raw, so ``&#34;`` would reach ``JSON.parse``), with ``<``, ``>`` and ``&`` as unicode
    escapes so no value can close the element."""
    from markupsafe import Markup

    text = json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def _when(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return str(value).replace("T", " ")[:19]


def _try(fn, default=None):
    try:
        return fn()
    except GristmillError:
        return default


def _status(ctx, invoke, project: str) -> dict:
    """Champion and its score, the last drift verdict, running jobs: each from its operation."""
    versions = _try(lambda: invoke(ctx, "models.list", project=project)["versions"], []) or []
    champion = next((v for v in versions if "champion" in v["aliases"]), None)
    drift = _try(lambda: invoke(ctx, "monitor.history", project=project, limit=1)["runs"], []) or []
    jobs = _jobs(ctx, invoke, project, state="running", limit=20)
    return {"champion": champion, "versions": len(versions), "drift": drift[-1] if drift else None,
            "running": None if jobs is None else len(jobs["jobs"])}


def _jobs(ctx, invoke, project: str, state: str | None = None, limit: int = 50, offset: int = 0) -> dict | None:
    from gristmill.services.registry import get

    try:
        get("jobs.list")
    except GristmillError:
        return None
    params = {"project": project, "limit": limit, "offset": offset}
    if state:
        params["state"] = state
    return invoke(ctx, "jobs.list", **params)


# -- what each project page shows (every value from an operation) ----------------------------------
def _data(ctx, invoke, get, project, **_):
    tables = invoke(ctx, "data.tables", project=project)["tables"]
    edges = invoke(ctx, "lineage.graph", project=project)["edges"]
    return {"tables": tables, "edges": edges[:2000]}


def _features(ctx, invoke, get, project, **_):
    views = invoke(ctx, "features.list")["feature_views"]
    return {"views": views}


def _training(ctx, invoke, get, project, offset=0, limit=100, **_):
    newest = invoke(ctx, "models.runs", project=project, limit=CHART_RUNS)   # charts: the newest 1,000
    chart = newest["runs"]
    if offset + limit <= CHART_RUNS:   # the table's page is inside them: one search, not two
        page = {"runs": chart[offset:offset + limit], "experiment_id": newest["experiment_id"],
                "more": len(chart) > offset + limit or newest["more"]}
    else:
        page = invoke(ctx, "models.runs", project=project, limit=limit, offset=offset)
    trials = [r for r in chart if r["trainer"]]
    metric = next((k for r in trials for k in r["metrics"] if k.startswith("cv_")), None)
    points = [{"t": r["start_time"], "trainer": r["trainer"], "score": r["metrics"].get(metric)}
              for r in trials if metric and metric in r["metrics"]]
    leaderboard = sorted(points, key=lambda p: p["score"], reverse=not (metric or "").endswith(("rmse", "mae", "logloss")))[:20]
    tops = [r for r in chart if not r["parent"]]
    shown = _try(lambda: invoke(ctx, "models.plots", project=project), {}) or {}
    return {"runs": page["runs"], "more": page["more"], "offset": offset, "limit": limit, "metric": metric,
            "points": points, "leaderboard": leaderboard, "parents": tops[:10],
            "experiment_id": page["experiment_id"], "plots": shown.get("plots", []),
            "plots_run": shown.get("run_id"), "plots_skipped": shown.get("skipped", {})}


def _models(ctx, invoke, get, project, offset=0, limit=50, **_):
    versions = _try(lambda: invoke(ctx, "models.list", project=project)["versions"], []) or []
    moves = invoke(ctx, "models.history", project=project)["moves"]
    return {"versions": versions[offset:offset + limit], "total": len(versions), "offset": offset,
            "limit": limit, "moves": moves[::-1][:100]}


def _deployments(ctx, invoke, get, project, **_):
    versions = _try(lambda: invoke(ctx, "models.list", project=project)["versions"], []) or []
    spec = invoke(ctx, "projects.spec", project=project)["spec"]
    records = invoke(ctx, "audit.list", project=project, action="serving.deploy", limit=20)["records"]
    live = invoke(ctx, "serving.status", project=project)
    return {"aliased": [v for v in versions if v["aliases"]], "spec": spec, "deploys": records[::-1], "live": live}


def _monitoring(ctx, invoke, get, project, **_):
    runs = invoke(ctx, "monitor.history", project=project, limit=200)["runs"]
    jobs = invoke(ctx, "monitor.list", project=project)["jobs"]
    return {"runs": runs, "jobs": jobs, "has_report": any(r.get("html_path") for r in runs)}


def _jobs_page(ctx, invoke, get, project, offset=0, limit=50, state=None, **_):
    found = _jobs(ctx, invoke, project, state=state, limit=limit, offset=offset)
    if found is None:
        return {"available": False, "jobs": [], "total": 0, "offset": 0, "limit": limit, "state": state, "logs": {}}
    logs = {}
    for job in found["jobs"][:5]:
        if job["state"] in ("running", "failed"):
            logs[job["id"]] = _try(lambda: invoke(ctx, "jobs.logs", job=job["id"], since=0)["lines"][-50:], [])
    return {"available": True, "jobs": found["jobs"], "total": found["total"], "offset": offset,
            "limit": limit, "state": state, "logs": logs}


def _audit(ctx, invoke, get, project, actor=None, action=None, offset=0, limit=100, **_):
    records = invoke(ctx, "audit.list", project=project, actor=actor, action=action, limit=5000)["records"][::-1]
    return {"records": records[offset:offset + limit], "total": len(records), "offset": offset, "limit": limit,
            "actor": actor, "action": action}


LOADERS = {"data": _data, "features": _features, "training": _training, "models": _models,
           "deployments": _deployments, "monitoring": _monitoring, "jobs": _jobs_page, "audit": _audit}
