"""The request guard in front of every service: tokens through the one policy check, the metrics
filter, the shared secret of ``serving.api_token_env``, JSON bodies only."""

import asyncio

import httpx
import pytest
import sqlalchemy as sa

from gristmill.errors import GristmillError
from gristmill.serving import guard
from gristmill.serving.guard import Access, RequestGuard, filter_metrics, metric_projects, token_from_env

METRICS = (
    "# HELP gristmill_predictions_total Predictions served.\n"
    "# TYPE gristmill_predictions_total counter\n"
    'gristmill_predictions_total{endpoint="predict",model_version="1",project="shop"} 3.0\n'
    'gristmill_predictions_total{endpoint="predict",model_version="2",project="secret_plan"} 9.0\n'
    'gristmill_prediction_seconds_bucket{endpoint="predict",le="0.5",model_version="1",project="shop"} 3.0\n'
    'bentoml_service_request_total{endpoint="/predict",http_response_code="200"} 12.0\n'
)


async def _echo(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _metrics_app(scope, receive, send):
    body = METRICS.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body[:50], "more_body": True})
    await send({"type": "http.response.body", "body": body[50:]})


async def _who(scope, receive, send):
    """Answers the caller's role on the project named by the path (as a gateway endpoint would)."""
    try:
        role = guard.allow(scope["path"].strip("/"))
        status, body = 200, role.value.encode()
    except GristmillError as exc:
        status, body = exc.http_status, str(exc).encode()
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(app, method, path, token=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["authorization"] = f"Bearer {token}"

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.request(method, path, headers=headers, **kwargs)

    return asyncio.run(go())


@pytest.fixture
def people(workspace):
    """Projects shop (owned by olga) and other; users with roles; tokens of every kind."""
    from gristmill.config import metadata
    from gristmill.identity import store
    from gristmill.services import Context, invoke

    local = Context.local(workspace)
    md = metadata(workspace)
    tokens = {}
    for name in ("olga", "vic", "ed", "stranger", "root_admin"):
        tokens[name] = invoke(local, "users.add", name=name, admin=name == "root_admin")["token"]
    store.claim_project(md, "shop", "olga")
    store.claim_project(md, "other", "olga")
    invoke(local, "projects.share", project="shop", user="vic", role="viewer")
    invoke(local, "projects.share", project="shop", user="ed", role="editor")
    invoke(local, "projects.share", project="other", user="stranger", role="owner")
    tokens["shop_viewer"] = store.create_token(md, "olga", "shop", store.Role.viewer)["token"]
    tokens["other_viewer"] = store.create_token(md, "olga", "other", store.Role.viewer)["token"]
    revoked = store.create_token(md, "vic")
    store.revoke_token(md, revoked["id"])
    tokens["revoked"] = revoked["token"]
    expired = store.create_token(md, "vic")
    with md.engine.begin() as conn:
        conn.execute(sa.text("UPDATE gm_tokens SET expires_at = '2000-01-01T00:00:00+00:00' WHERE id = :i"),
                     {"i": expired["id"]})
    tokens["expired"] = expired["token"]
    tokens["unknown"] = "gm_0123456789abcdef_" + "x" * 43
    tokens["malformed"] = "not-a-token"
    return workspace, md, tokens


def _bento(ws, token=None, ttl=guard.CACHE_SECONDS):
    return RequestGuard(_echo, project="shop", token=token, access=Access("shop", token, ws, ttl=ttl))


def test_a_bento_lets_in_viewers_of_its_project_only(people):
    ws, _, tokens = people
    app = _bento(ws)
    expected = {None: 401, "malformed": 401, "unknown": 401, "expired": 401, "revoked": 401,
                "stranger": 404, "other_viewer": 404, "vic": 200, "ed": 200, "olga": 200,
                "root_admin": 200, "shop_viewer": 200}
    got = {who: _call(app, "POST", "/predict", tokens.get(who), json={}).status_code for who in expected}
    assert got == expected
    refused = _call(app, "POST", "/predict", json={})
    assert refused.headers["www-authenticate"] == "Bearer" and "Bearer" in refused.json()["error"]
    assert "not one of yours" in _call(app, "POST", "/model", tokens["stranger"], json={}).json()["error"]
    for probe in ("/healthz", "/readyz", "/livez", "/docs.json", "/"):
        assert _call(app, "GET", probe).status_code == 200
    assert _call(app, "GET", "/metrics").status_code == 401  # metrics are no probe
    assert _call(app, "GET", "/metrics", tokens["stranger"]).status_code == 404


def test_a_revoked_token_stops_within_the_cache_time(people):
    from gristmill.identity import store

    ws, md, _ = people
    made = store.create_token(md, "vic")
    cached, uncached = _bento(ws), _bento(ws, ttl=0)
    assert _call(cached, "POST", "/predict", made["token"], json={}).status_code == 200
    store.revoke_token(md, made["id"])
    assert _call(uncached, "POST", "/predict", made["token"], json={}).status_code == 401
    assert _call(cached, "POST", "/predict", made["token"], json={}).status_code == 200  # remembered
    cached.access._principals.ttl = 0  # what CACHE_SECONDS later looks like
    cached.access._principals._items.clear()
    assert _call(cached, "POST", "/predict", made["token"], json={}).status_code == 401


def test_the_shared_secret_is_a_viewer_of_its_project_only(people):
    from gristmill.identity.policy import authorize, visible_projects
    from gristmill.identity.roles import Action

    ws, md, tokens = people
    app = _bento(ws, token="s3cret")
    assert _call(app, "POST", "/predict", "s3cret", json={}).status_code == 200
    assert _call(app, "POST", "/predict", "s3cret-not", json={}).status_code == 401
    assert _call(app, "POST", "/predict", tokens["vic"], json={}).status_code == 200  # tokens still work
    service = app.access.service_principal()
    assert authorize(md, service, Action.predict, "shop").value == "viewer"
    with pytest.raises(GristmillError, match="not one of yours"):
        authorize(md, service, Action.predict, "other")
    with pytest.raises(GristmillError):
        authorize(md, service, Action.train, "shop")  # viewer only
    with pytest.raises(GristmillError):
        authorize(md, service, Action.create_project)
    assert visible_projects(md, service, ["shop", "other"]) == ["shop"]
    other = RequestGuard(_echo, project="other", access=Access("other", None, ws))
    assert _call(other, "POST", "/predict", "s3cret", json={}).status_code == 401


def test_the_gateway_authenticates_and_each_endpoint_authorizes(people):
    ws, _, tokens = people
    app = RequestGuard(_who, access=Access(None, None, ws))
    assert _call(app, "POST", "/shop", json={}).status_code == 401
    assert _call(app, "POST", "/shop", tokens["expired"], json={}).status_code == 401
    vic = {p: _call(app, "POST", f"/{p}", tokens["vic"], json={}) for p in ("shop", "other", "nope")}
    assert (vic["shop"].status_code, vic["shop"].text) == (200, "viewer")
    assert vic["other"].status_code == vic["nope"].status_code == 404  # unknown and unshared alike
    assert vic["other"].text.replace("other", "X") == vic["nope"].text.replace("nope", "X")
    assert _call(app, "POST", "/other", tokens["shop_viewer"], json={}).status_code == 404
    assert _call(app, "POST", "/other", tokens["root_admin"], json={}).text == "owner"
    assert _call(app, "POST", "/Bad%20Name!", tokens["vic"], json={}).status_code == 400
    with pytest.raises(GristmillError):
        RequestGuard(_echo, token="s3cret")  # no shared secret for every project


def test_metrics_show_only_the_projects_the_caller_may_see(people):
    ws, _, tokens = people
    assert metric_projects(METRICS) == {"shop", "secret_plan"}
    assert "secret_plan" not in filter_metrics(METRICS, {"shop"})
    assert filter_metrics(METRICS, {"shop"}).count("\n") == METRICS.count("\n") - 1

    gateway = RequestGuard(_metrics_app, access=Access(None, None, ws))
    seen = _call(gateway, "GET", "/metrics", tokens["vic"])
    assert seen.status_code == 200 and int(seen.headers["content-length"]) == len(seen.content)
    assert 'project="shop"' in seen.text and "secret_plan" not in seen.text
    assert "bentoml_service_request_total" in seen.text and "# HELP" in seen.text
    assert "project=" not in _call(gateway, "GET", "/metrics", tokens["stranger"]).text
    assert "secret_plan" in _call(gateway, "GET", "/metrics", tokens["root_admin"]).text  # admins: all
    assert _call(gateway, "GET", "/metrics").status_code == 401

    bento = RequestGuard(_metrics_app, project="shop", access=Access("shop", None, ws))
    own = _call(bento, "GET", "/metrics", tokens["shop_viewer"])
    assert own.status_code == 200 and 'project="shop"' in own.text and "secret_plan" not in own.text


def test_non_json_bodies_get_415_and_json_passes(people):
    ws, _, tokens = people
    app = _bento(ws)
    token = tokens["vic"]
    refused = _call(app, "POST", "/predict", token, content=b"x", headers={"content-type": "multipart/form-data"})
    assert refused.status_code == 415 and "application/json" in refused.json()["error"]
    assert _call(app, "POST", "/predict", token, json={"rows": []}).status_code == 200
    assert _call(app, "POST", "/predict", token, content=b"{}").status_code == 200  # no type: let it parse
    assert _call(app, "POST", "/predict", content=b"x",  # who asks comes first
                 headers={"content-type": "multipart/form-data"}).status_code == 401


def test_the_cache_is_bounded_and_expires():
    cache = guard._TTLCache(ttl=60, size=3)
    for i in range(5):
        cache.put(i, str(i))
    assert [cache.get(i) for i in range(5)] == [None, None, "2", "3", "4"]
    cache.ttl = -1
    cache.put("gone", "x")
    assert cache.get("gone") is None


def test_a_named_token_variable_must_be_set(monkeypatch):
    assert token_from_env(None) is None
    monkeypatch.delenv("GM_TEST_TOKEN", raising=False)
    with pytest.raises(GristmillError, match="GM_TEST_TOKEN"):
        token_from_env("GM_TEST_TOKEN")
    monkeypatch.setenv("GM_TEST_TOKEN", "t")
    assert token_from_env("GM_TEST_TOKEN") == "t"
