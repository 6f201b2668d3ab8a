"""The server's app in a test client, and a real server in a thread (the team: tests/conftest.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

@pytest.fixture
def client(team):
    from fastapi.testclient import TestClient

    from gristmill.server.app import create_app

    with TestClient(create_app(team.ws)) as c:
        yield c


def audit_count(ws) -> int:
    from gristmill.config import metadata
    from gristmill.metadata.db import audit

    with metadata(ws).engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one()


@pytest.fixture
def live_server(workspace, free_port, start_worker):
    """A real uvicorn server on loopback, in a thread of this process, and a real worker process
    for its jobs; yields its URL."""
    import os

    start_worker(dict(os.environ), "w-live", slots=2)
    import threading
    import time

    import httpx
    import uvicorn

    from gristmill.server.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(workspace), host="127.0.0.1", port=free_port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{free_port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
