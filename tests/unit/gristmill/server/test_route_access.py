"""Every route of the server, called as every kind of caller; the expected outcome of each is
declared once, in ROUTES. The routes are read from the app itself, so a new route without a line
here fails the test."""

from __future__ import annotations

import io
import secrets

import pytest
from fastapi.routing import APIRoute

# route -> who may use it: open (no token), auth (any valid token; the operation filters what it
# shows), user-token (any user token, not a project-scoped one), self (the user the path names:
# "vi", or an admin), viewer / editor / owner (a role on the project "shop"), admin
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "open",
    ("GET", "/readyz"): "open",
    ("GET", "/metrics"): "open",                  # no names in it; server.metrics_need_token asks for one
    ("POST", "/auth/token"): "open",
    ("GET", "/whoami"): "auth",
    ("POST", "/users"): "admin",
    ("GET", "/users"): "admin",
    ("POST", "/users/{name}/disable"): "admin",
    ("POST", "/users/{name}/password"): "self",
    ("POST", "/tokens"): "user-token",
    ("GET", "/tokens"): "auth",
    ("POST", "/tokens/{token_id}/revoke"): "auth",   # one's own; anyone's for an admin
    ("GET", "/projects"): "auth",
    ("GET", "/projects/{project}/members"): "viewer",
    ("POST", "/projects/{project}/share"): "owner",
    ("POST", "/projects/{project}/delete"): "owner",
    ("GET", "/projects/{project}/spec"): "viewer",
    ("PUT", "/projects/{project}/spec"): "editor",
    ("POST", "/projects/{project}/uploads"): "editor",
    ("POST", "/projects/{project}/ingest"): "editor",
    ("POST", "/projects/{project}/sql"): "viewer",
    ("POST", "/projects/{project}/features/apply"): "editor",
    ("POST", "/projects/{project}/features/dataset"): "editor",
    ("POST", "/projects/{project}/features/materialize"): "editor",
    ("GET", "/projects/{project}/features/suggest"): "viewer",
    ("GET", "/features"): "auth",
    ("POST", "/projects/{project}/features/remove"): "editor",
    ("POST", "/projects/{project}/train"): "editor",
    ("POST", "/projects/{project}/trials"): "editor",
    ("GET", "/projects/{project}/models"): "viewer",
    ("GET", "/projects/{project}/models/history"): "viewer",
    ("POST", "/projects/{project}/models/promote"): "editor",
    ("POST", "/projects/{project}/models/challenge"): "editor",
    ("POST", "/projects/{project}/models/rollback"): "editor",
    ("POST", "/projects/{project}/deploy"): "editor",
    ("POST", "/projects/{project}/monitor/run"): "editor",
    ("GET", "/projects/{project}/monitor/history"): "viewer",
    ("POST", "/projects/{project}/monitor/schedule"): "editor",
    ("POST", "/projects/{project}/monitor/unschedule"): "editor",
    ("POST", "/projects/{project}/monitor/drift"): "editor",
    ("GET", "/monitor/jobs"): "auth",
    ("GET", "/audit"): "auth",
    ("GET", "/audit/verify"): "admin",
    ("GET", "/projects/{project}/lineage"): "viewer",
    ("POST", "/jobs/noop"): "admin",              # a no-op job, queued (bench/queue_bench.py)
    ("POST", "/jobs"): "editor",                  # a training of shop, queued
    ("GET", "/jobs"): "auth",                     # filtered to what the caller may see
    ("GET", "/jobs/{job}"): "auth",               # (a job's own rules: tests/unit/gristmill/jobs)
    ("GET", "/jobs/{job}/logs"): "auth",
    ("POST", "/jobs/{job}/cancel"): "auth",
    ("GET", "/workers"): "auth",
    ("GET", "/projects/{project}/tables"): "viewer",
    ("GET", "/projects/{project}/runs"): "viewer",
    ("GET", "/templates"): "auth",
    ("GET", "/templates/{name}"): "auth",
    ("POST", "/projects/{project}/new"): "editor",   # past the check, refused: the server reads no path
    ("GET", "/projects/{project}/plots"): "viewer",
    ("GET", "/projects/{project}/serving"): "viewer",
}
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

# caller -> its standing: None for credentials that must not work, else its role on "shop"
CALLERS = {
    "none": None, "malformed": None, "unknown": None, "expired": None, "revoked": None,
    "mo": "stranger",            # owns another project, no role on shop
    "vi": "viewer", "shop_viewer_token": "viewer", "ed": "editor", "olga": "owner", "ada": "admin",
}
RANK = {"viewer": 1, "editor": 2, "owner": 3, "admin": 4}


def expected(level: str, caller: str) -> str:
    """'ok' (past the policy check), or the status the policy answers."""
    standing = CALLERS[caller]
    if level == "open":
        return "ok"
    if standing is None:
        return "401"
    if level == "auth":
        return "ok"
    if level == "user-token":
        return "403" if caller.endswith("_token") else "ok"
    if level == "self":
        return "ok" if caller in ("vi", "ada") else "403"
    if level == "admin":
        return "ok" if standing == "admin" else "403"
    if standing == "stranger":
        return "404"
    return "ok" if RANK[standing] >= RANK[level] else "403"


def request_for(method: str, path: str, team) -> dict:
    """A well-formed request for the route (its answer past the policy check is the operation's)."""
    body = {
        "/auth/token": {"name": "vi", "password": "vi-password"},
        "/users": {"name": f"u{secrets.token_hex(3)}"},
        "/users/{name}/disable": {"disabled": False},
        "/users/{name}/password": {"password": "a-long-password"},
        "/tokens": {"label": "matrix"},
        "/projects/{project}/share": {"user": "tmp", "role": "viewer"},
        "/projects/{project}/delete": {"confirm": "not-shop"},  # past the check, refused: shop stays
        "/projects/{project}/spec": {"spec": "project: shop\n"},
        "/projects/{project}/ingest": {"upload": "0" * 16},
        "/projects/{project}/sql": {"query": "select 1 as one"},
        "/projects/{project}/models/challenge": {"version": "1"},
        "/projects/{project}/monitor/schedule": {"every": 3600},
        "/projects/{project}/trials": {"ref": {}},
        "/projects/{project}/new": {"objective": "predict churn"},
        "/jobs": {"kind": "models.train", "params": {"project": "shop"}} if method == "POST" else None,
    }.get(path)
    url = path.format(project="shop", name="vi", token_id="0123456789abcdef", job="j0123456789abcdef")
    out = {"method": method, "url": url}
    if path == "/projects/{project}/uploads":
        out["files"] = [("files", ("orders.csv", io.BytesIO(b"customer_id,amount\na,1\n"), "text/csv"))]
    elif body is not None:
        out["json"] = body
    elif method in ("POST", "PUT"):
        out["json"] = {}
    return out


def test_every_route_is_declared(client):
    found = {(m, r.path) for r in client.app.routes if isinstance(r, APIRoute) and r.path not in DOCS
             for m in r.methods}
    assert found == set(ROUTES), f"declare these routes in ROUTES: {found - set(ROUTES)}; gone: {set(ROUTES) - found}"


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_every_route_answers_each_caller_as_declared(client, team, caller):
    wrong = []
    for (method, path), level in ROUTES.items():
        response = client.request(**request_for(method, path, team), headers=team.headers(caller))
        code = response.json().get("code") if response.headers.get("content-type", "").startswith("application/json") else None
        if isinstance(code, str) and code in ("Unauthenticated",):
            got = "401"
        elif code == "Forbidden":
            got = "403"
        elif code == "NoAccess":
            got = "404"
        else:
            got = "ok"
        assert response.status_code < 500, f"{method} {path} as {caller}: {response.status_code} {response.text}"
        want = expected(level, caller)
        if got != want or (got != "ok" and str(response.status_code) != got):
            wrong.append(f"{method} {path}: want {want}, got {response.status_code} {response.text[:120]}")
    assert not wrong, f"as {caller}:\n" + "\n".join(wrong)


def test_policy_refusals_of_changes_are_audited_with_the_caller(client, team):
    from gristmill.audit import trail
    from gristmill.config import metadata

    client.post("/projects/shop/models/promote", json={}, headers=team.headers("vi"))
    last = trail.records(metadata(team.ws), project="shop")[-1]
    assert (last["actor"], last["action"], last["result"]) == ("vi", "models.promote", "denied")
    assert trail.verify(metadata(team.ws))["ok"]


def test_every_route_is_in_the_openapi_document(client):
    document = client.get("/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert set(ROUTES) == documented
    secured = {(m.upper(), p) for p, ops in document["paths"].items() for m, op in ops.items() if op.get("security")}
    assert secured == {route for route, level in ROUTES.items() if level != "open"}


# -- the dashboard (/ui, mounted into the same app): signed in with each caller's token ----------
DASHBOARD_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/login"): "open",
    ("POST", "/login"): "open",
    ("POST", "/logout"): "auth",
    ("GET", "/static/{name}"): "open",
    ("GET", "/vendor/plotly.min.js"): "open",
    ("GET", "/"): "auth",
    ("GET", "/p/{project}"): "open",                    # a redirect to the project's data page
    ("GET", "/p/{project}/{name}"): "viewer",
    ("GET", "/p/{project}/monitoring/report"): "viewer",
    ("POST", "/p/{project}/models/{move}"): "editor",
    ("POST", "/p/{project}/jobs/{job}/cancel"): "auth",  # jobs.cancel: the job's owner (or an admin)
}


def _dashboard(client):
    from starlette.routing import Mount

    return next(r.app for r in client.app.routes if isinstance(r, Mount) and r.path == "/ui")


def test_every_dashboard_route_is_declared(client):
    found = {(m, r.path) for r in _dashboard(client).routes if isinstance(r, APIRoute) for m in r.methods}
    assert found == set(DASHBOARD_ROUTES), f"declare: {found - set(DASHBOARD_ROUTES)}; gone: {set(DASHBOARD_ROUTES) - found}"


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_every_dashboard_route_answers_each_caller_as_declared(team, caller):
    import re

    from fastapi.testclient import TestClient

    from gristmill.server.app import create_app

    wrong = []
    with TestClient(create_app(team.ws), base_url="http://127.0.0.1") as c:
        csrf = ""
        if team.tokens[caller]:
            page = c.get("/ui/login")
            login_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            c.post("/ui/login", data={"csrf": login_csrf, "token": team.tokens[caller]})
            home = c.get("/ui/", follow_redirects=False)
            if home.status_code == 200:   # signed in
                csrf = re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)
        for (method, path), level in DASHBOARD_ROUTES.items():
            if path == "/logout":
                continue   # last, below: it ends the session
            url = "/ui" + path.format(project="shop", name="models", move="rollback", job="0" * 12)
            url = url.replace("/static/models", "/static/style.css")
            if method == "POST" and path == "/login":
                r = c.post(url, data={"csrf": "x"}, follow_redirects=False)
                got = "ok" if r.status_code == 403 else f"?{r.status_code}"   # CSRF refusal, open route
            else:
                r = c.request(method, url, data={"csrf": csrf} if method == "POST" else None,
                              follow_redirects=False)
                code = re.search(r'data-code="([^"]+)"', r.text)
                code = code.group(1) if code else None
                if r.status_code == 303 and r.headers["location"].startswith("/ui/login"):
                    got = "401"
                elif code == "Forbidden":
                    got = "403"
                elif code == "NoAccess":
                    got = "404"
                else:
                    got = "ok"
            assert r.status_code < 500, f"{method} {path} as {caller}: {r.status_code} {r.text[:300]}"
            want = expected(level, caller)
            if got != want:
                wrong.append(f"{method} {path}: want {want}, got {got} ({r.status_code})")
        signed = c.get("/ui/", follow_redirects=False).status_code == 200
        r = c.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303
        got = "ok" if signed and c.get("/ui/", follow_redirects=False).status_code == 303 else (
            "401" if not signed else "still signed in")
        if got != expected("auth", caller):
            wrong.append(f"POST /logout: want {expected('auth', caller)}, got {got}")
    assert not wrong, f"as {caller}:\n" + "\n".join(wrong)
