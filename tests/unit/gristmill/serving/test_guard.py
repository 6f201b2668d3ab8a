"""The request guard in front of every service: JSON bodies only, and the optional API token."""

import asyncio

import httpx
import pytest

from gristmill.errors import GristmillError
from gristmill.serving.guard import RequestGuard, token_from_env


async def _echo(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _call(app, method, path, **kwargs):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_non_json_bodies_get_415_and_json_passes():
    app = RequestGuard(_echo)
    refused = _call(app, "POST", "/predict", content=b"x", headers={"content-type": "multipart/form-data"})
    assert refused.status_code == 415 and "application/json" in refused.json()["error"]
    assert _call(app, "POST", "/predict", json={"rows": []}).status_code == 200
    assert _call(app, "POST", "/predict", content=b"{}").status_code == 200  # no content type: let it parse


def test_the_token_guards_everything_but_the_probes():
    app = RequestGuard(_echo, token="s3cret")
    assert _call(app, "POST", "/predict", json={}).status_code == 401
    wrong = _call(app, "POST", "/predict", json={}, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert _call(app, "POST", "/predict", json={}, headers={"authorization": "Bearer s3cret"}).status_code == 200
    for probe in ("/healthz", "/readyz", "/livez", "/metrics"):
        assert _call(app, "GET", probe).status_code == 200


def test_a_named_token_variable_must_be_set(monkeypatch):
    assert token_from_env(None) is None
    monkeypatch.delenv("GM_TEST_TOKEN", raising=False)
    with pytest.raises(GristmillError, match="GM_TEST_TOKEN"):
        token_from_env("GM_TEST_TOKEN")
    monkeypatch.setenv("GM_TEST_TOKEN", "t")
    assert token_from_env("GM_TEST_TOKEN") == "t"
