"""The server's observability: request ids (honoured, replaced, generated; in the JSON log lines and
on the jobs a request submits, down to the job's own log lines), and ``/metrics`` by route template
with no project or user name in it."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest


@pytest.fixture
def json_log():
    """The server's JSON log lines written during the test."""
    from gristmill.logs import JsonLines

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("gristmill.server.requests")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_request_ids_are_honoured_or_made_and_logged(client, team, json_log):
    given = client.get("/whoami", headers={**team.headers("vi"), "X-Request-ID": "trace-42.a:b"})
    assert given.status_code == 200 and given.headers["x-request-id"] == "trace-42.a:b"
    made = client.get("/whoami", headers=team.headers("vi"))
    assert len(made.headers["x-request-id"]) == 16
    for bad in ("has space", "x" * 65, "new\nline", "-leading"):
        replaced = client.get("/healthz", headers={"X-Request-ID": bad})
        assert replaced.headers["x-request-id"] != bad and len(replaced.headers["x-request-id"]) == 16
    refused = client.get("/projects/shop/spec", headers={"X-Request-ID": "no-token-1"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "no-token-1"
    lines = {line.get("request_id"): line for line in json_log()}
    assert lines["trace-42.a:b"]["route"] == "/whoami" and lines["trace-42.a:b"]["status"] == 200
    assert lines[made.headers["x-request-id"]]["method"] == "GET"
    assert lines["no-token-1"] == {**lines["no-token-1"], "route": "/projects/{project}/spec", "status": 401,
                                   "path": "/projects/shop/spec", "level": "INFO"}
    assert not any(line.get("route") == "/healthz" for line in lines.values())  # probes: counted, not logged


def test_a_submitted_job_carries_the_request_id_to_its_log_lines(client, team, workspace):
    from gristmill.config import metadata
    from gristmill.jobs import store
    from gristmill.jobs.scheduler import dispatch

    answer = client.post("/projects/shop/train", json={"budget": 5},
                         headers={**team.headers("olga"), "X-Request-ID": "req-train-1"})
    assert answer.status_code == 200, answer.text
    job = answer.json()["job"]
    assert job["request_id"] == "req-train-1" and job["state"] == "queued"
    shown = client.get(f"/jobs/{job['id']}", headers=team.headers("olga")).json()
    assert shown["request_id"] == "req-train-1"
    md = metadata(workspace)
    store.heartbeat(md, "w-test", "host", os.getpid(), 1, None)
    sent = dispatch(workspace, send=False).sent
    assert [(j, a) for j, a, _ in sent] == [(job["id"], 1)]
    assert store.claim(md, job["id"], 1, "w-test") is not None
    # the job's process, as a worker starts it: every JSON line names the request
    out = subprocess.run([sys.executable, "-m", "gristmill.jobs.execute", job["id"], "1"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "GRISTMILL_WORKSPACE": str(workspace.root)})
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert lines, out.stdout + out.stderr
    assert {line.get("request_id") for line in lines} == {"req-train-1"}
    assert {line.get("job") for line in lines} == {job["id"]}
    assert "(request req-train-1)" in lines[0]["message"]


def test_metrics_by_route_template_without_names(client, team):
    client.post("/projects/shop/train", json={"budget": 5}, headers=team.headers("olga"))
    client.get("/projects/shop/spec", headers=team.headers("vi"))
    client.get("/projects/other/spec", headers=team.headers("vi"))   # 404 for vi
    client.get("/no/such/path/for-shop")
    scraped = client.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    samples = [line for line in text.splitlines() if line.startswith("gristmill_")]
    assert 'gristmill_http_requests_total{method="GET",route="/projects/{project}/spec",status="200"}' in text
    assert 'route="/projects/{project}/spec",status="404"' in text
    assert 'route="unmatched",status="404"' in text
    assert 'gristmill_jobs{kind="models.train",state="queued"} 1.0' in text
    assert "gristmill_job_oldest_waiting_seconds{kind=\"models.train\"}" in text
    assert "gristmill_workers 0.0" in text
    for name in ("shop", "other", "olga", "vi", "for-shop"):
        assert not [s for s in samples if name in s], name


def test_metrics_can_ask_for_a_token(team):
    from fastapi.testclient import TestClient

    from gristmill.server.app import create_app

    (team.ws.root / "gristmill.yaml").write_text("server: {metrics_need_token: true}\n")
    with TestClient(create_app(team.ws)) as guarded:
        assert guarded.get("/metrics").status_code == 401
        assert guarded.get("/metrics", headers=team.headers("vi")).status_code == 200


def test_the_noop_job_is_for_admins_and_runs_through_the_policy(client, team):
    from gristmill.errors import GristmillError
    from gristmill.services import Context, invoke

    refused = client.post("/jobs/noop", json={"seconds": 0}, headers=team.headers("olga"))
    assert refused.status_code == 403 and refused.json()["code"] == "Forbidden"
    queued = client.post("/jobs/noop", json={"seconds": 0}, headers=team.headers("ada"))
    assert queued.status_code == 200 and queued.json()["job"]["kind"] == "jobs.noop"
    local = Context.local(team.ws)   # what its worker runs: the operation itself
    assert invoke(local, "jobs.noop", seconds=0)["slept"] == 0
    with pytest.raises(GristmillError, match="between 0 and 60"):
        invoke(local, "jobs.noop", seconds=61)
