"""The team server on the real PostgreSQL: two server processes share one metadata database, and
8 users act at once through the API for a bounded time: no 5xx, no lost audit record, every
action attributed to its user, the chain intact."""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

POSTGRES = os.environ.get("GRISTMILL_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/postgres")
BIN = Path(sys.executable).parent
USERS = [f"user{i}" for i in range(8)]
SECONDS = 15
SPEC = """project: {project}
sources: [{{path: /nonexistent}}]
entity: {{name: customer, key: customer_id}}
features: [{{table: orders}}]
label: {{table: labels, target: y, timestamp: as_of}}
description: "{note}"
"""


@pytest.fixture
def team_metadata(workspace):
    import psycopg

    database = f"gristmill_srv_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True)
    except Exception as exc:
        pytest.fail(f"team-server tests need PostgreSQL at {POSTGRES} ({exc}); start it as the machine "
                    "notes say (pg_ctlcluster ... start)")
    admin.execute(f'CREATE DATABASE "{database}"')
    url = POSTGRES.rsplit("/", 1)[0] + f"/{database}"
    (workspace.root / "gristmill.yaml").write_text(f"server:\n  metadata: {url}\n")
    try:
        yield workspace, url
    finally:
        from gristmill.metadata.db import _engines

        for key in [k for k in _engines if database in k]:
            _engines.pop(key).engine.dispose()
        admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        admin.close()


def test_eight_users_at_once_through_two_servers_on_postgres(team_metadata, tmp_path, start_server):
    import psycopg

    from gristmill.audit import trail
    from gristmill.config import metadata
    from gristmill.services import Context, invoke

    ws, url = team_metadata
    md = metadata(ws)
    assert md.team
    local = Context.local(ws)
    tokens = {u: invoke(local, "users.add", name=u)["token"] for u in USERS}
    env = {**os.environ, "GRISTMILL_WORKSPACE": str(ws.root)}
    bases: list[str] = []
    done = collections.Counter()
    failures: list[str] = []

    def act(i: int, user: str) -> None:
        project = f"p_{user}"
        neighbour = USERS[(i + 1) % len(USERS)]
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        with httpx.Client(base_url=bases[i % 2], headers=headers, timeout=30) as client:
            n = 0
            while time.monotonic() < stop:
                n += 1
                calls = [
                    ("PUT", f"/projects/{project}/spec", {"spec": SPEC.format(project=project, note=n)}),
                    ("POST", f"/projects/{project}/share", {"user": neighbour, "role": "viewer"}),
                    ("POST", "/tokens", {"label": f"t{n}", "expires": "1h"}),
                    ("GET", "/whoami", None),
                    ("GET", f"/audit?project={project}&limit=5", None),
                ]
                for method, path, body in calls:
                    response = client.request(method, path, json=body)
                    if response.status_code >= 500 or (response.status_code >= 400 and method != "GET"):
                        failures.append(f"{user} {method} {path}: {response.status_code} {response.text[:200]}")
                        continue
                    if method != "GET":
                        done[user] += 1
                # a refused change is audited too, as the user who tried it
                refused = client.post(f"/projects/p_{neighbour}/share", json={"user": user, "role": "owner"})
                if refused.status_code not in (403, 404):
                    failures.append(f"{user} shared {neighbour}'s project: {refused.status_code}")
                done[(user, "denied")] += 1

    threads = [threading.Thread(target=act, args=(i, u)) for i, u in enumerate(USERS)]
    with contextlib.ExitStack() as servers:
        for i in range(2):
            bases.append(servers.enter_context(start_server(
                [str(BIN / "gristmill"), "server"], tmp_path, env, tmp_path / f"server{i}.log")))
        stop = time.monotonic() + SECONDS  # (read by act(): the bounded time starts with both up)
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 120)
    assert not failures, failures[:10]
    records = trail.records(md, limit=100_000)
    by_user = collections.Counter(r["actor"] for r in records if r["result"] == "ok" and r["actor"] in USERS
                                  and r["action"] != "project.create")
    denied = collections.Counter(r["actor"] for r in records if r["result"] == "denied")
    for user in USERS:
        assert done[user] > 3, f"{user} did almost nothing: {done[user]}"
        assert by_user[user] == done[user], f"{user}: {done[user]} changes, {by_user[user]} audit records"
        assert denied[user] == done[(user, "denied")]
    assert trail.verify(md)["ok"], trail.verify(md)
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    with psycopg.connect(url) as con:
        assert con.execute("SELECT count(*) FROM gm_audit").fetchone()[0] == len(records)
