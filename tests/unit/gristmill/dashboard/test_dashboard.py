"""The dashboard through a test client: sign-in, the cookie, CSRF, roles (the team of tests/conftest.py)."""

from __future__ import annotations

import re

import pytest


@pytest.fixture
def client(team):
    from fastapi.testclient import TestClient

    from gristmill.server.app import create_app

    with TestClient(create_app(team.ws), base_url="http://127.0.0.1") as c:
        yield c


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client, name: str) -> str:
    """Sign in as ``name`` with their password; the session's CSRF token."""
    page = client.get("/ui/login")
    r = client.post("/ui/login", data={"csrf": csrf_of(page.text), "name": name, "password": f"{name}-password",
                                       "next": "/ui/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
    return csrf_of(client.get("/ui/").text)


def test_root_redirects_to_the_dashboard_and_it_asks_to_sign_in(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    r = client.get("/ui/p/shop/models", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/p/shop/models"


def test_sign_in_sets_a_signed_httponly_samesite_cookie_holding_a_real_token(client, team):
    from gristmill.identity import store
    from gristmill.config import metadata

    page = client.get("/ui/login")
    r = client.post("/ui/login", data={"csrf": csrf_of(page.text), "name": "olga", "password": "olga-password"},
                    follow_redirects=False)
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("gm_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie   # plain HTTP on 127.0.0.1 by default
    home = client.get("/ui/")
    assert home.status_code == 200 and "shop" in home.text and "olga" in home.text
    logins = [t for t in store.list_tokens(metadata(team.ws), "olga") if t["label"] == "login"]
    assert len(logins) == 1 and logins[0]["expires_at"] and not logins[0]["revoked_at"]
    r = client.post("/ui/logout", data={"csrf": csrf_of(home.text)}, follow_redirects=False)
    assert r.status_code == 303
    # sign-out revokes it (found by id: tokens made in the same second have no order between them)
    assert next(t for t in store.list_tokens(metadata(team.ws), "olga") if t["id"] == logins[0]["id"])["revoked_at"]
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_secure_flag_is_configurable(team, monkeypatch):
    from fastapi.testclient import TestClient

    from gristmill.server.app import create_app

    monkeypatch.setenv("GRISTMILL_DASHBOARD_SECURE_COOKIE", "1")
    with TestClient(create_app(team.ws), base_url="https://127.0.0.1") as c:
        r = c.get("/ui/login")
        assert "Secure" in r.headers["set-cookie"]


def test_secret_is_owner_only(client, team):
    path = team.ws.root / "dashboard.secret"
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_text()) >= 64


def test_a_forged_or_tampered_cookie_is_refused(client):
    client.cookies.set("gm_session", "eyJ0b2tlbiI6Im5vIn0.forged", path="/ui")
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_sign_in_with_a_token_and_wrong_password(client, team):
    page = client.get("/ui/login")
    r = client.post("/ui/login", data={"csrf": csrf_of(page.text), "name": "vi", "password": "nope"},
                    follow_redirects=False)
    assert r.status_code == 303 and "error=" in r.headers["location"]
    page = client.get("/ui/login")
    r = client.post("/ui/login", data={"csrf": csrf_of(page.text), "token": team.tokens["vi"]})
    assert r.status_code == 200 and "vi" in r.text


def test_csrf_refusal(client, team):
    page = client.get("/ui/login")
    r = client.post("/ui/login", data={"csrf": "wrong", "name": "ed", "password": "ed-password"})
    assert r.status_code == 403 and "CSRF" in r.text
    sign_in(client, "ed")
    before = client.get("/ui/p/shop/audit").text.count("models.promote")
    for data in ({}, {"csrf": "forged"}):
        r = client.post("/ui/p/shop/models/promote", data=data | {"version": "1"})
        assert r.status_code == 403 and "CSRF" in r.text
    assert client.get("/ui/p/shop/audit").text.count("models.promote") == before   # nothing ran


@pytest.mark.parametrize("page", ["data", "features", "training", "models", "deployments", "monitoring",
                                  "jobs", "audit"])
def test_each_page_opens_for_a_viewer_and_is_hidden_from_a_stranger(client, page):
    sign_in(client, "vi")
    r = client.get(f"/ui/p/shop/{page}")
    assert r.status_code == 200, r.text
    assert "Content-Security-Policy" in r.headers
    client.cookies.clear()
    sign_in(client, "mo")
    r = client.get(f"/ui/p/shop/{page}")
    assert r.status_code == 404 and "shop" in r.text


def test_viewer_sees_no_buttons_and_the_api_refuses_anyway(client):
    csrf = sign_in(client, "vi")
    html = client.get("/ui/p/shop/models").text
    assert 'data-action="' not in html
    r = client.post("/ui/p/shop/models/rollback", data={"csrf": csrf})
    assert r.status_code == 403


def test_jobs_page_says_jobs_are_not_available_without_the_operations(client):
    from gristmill.services.registry import OPERATIONS

    sign_in(client, "olga")
    html = client.get("/ui/p/shop/jobs").text
    if "jobs.list" in OPERATIONS:
        assert 'data-testid="jobs"' in html
    else:
        assert "Jobs are not available" in html


def test_plotly_is_served_from_the_installed_package(client):
    r = client.get("/ui/vendor/plotly.min.js")
    assert r.status_code == 200 and "plotly" in r.text[:2000].lower()
    assert client.get("/ui/static/app.js").status_code == 200
    assert client.get("/ui/static/..%2Fweb.py").status_code >= 400


def test_next_is_only_a_dashboard_path(client):
    page = client.get("/ui/login?next=https://evil.example/")
    assert 'name="next" value="/ui/"' in page.text
