"""``gristmill server``: the team's API."""

from __future__ import annotations

import typer

from gristmill.cli.output import console


def server(
    host: str = typer.Option(None, "--host", help="Address to listen on (default: server.host, 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default: server.port, 8700)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes (they share the metadata)."),
) -> None:
    """Start the Gristmill API (FastAPI on uvicorn) on this workspace."""
    import uvicorn

    from gristmill.config import load_config, metadata
    from gristmill.identity import store
    from gristmill.workspace import Workspace

    ws = Workspace.resolve().ensure()
    settings = load_config(ws).server
    host, port = host or settings.host, port or settings.port
    md = metadata(ws)
    kind = "PostgreSQL (team mode)" if md.team else f"SQLite {ws.metadata_db}"
    console.print(f"Gristmill server on http://{host}:{port} (workspace {ws.root}; metadata {kind}); "
                  f"API docs at /docs, OpenAPI at /openapi.json", soft_wrap=True)
    if store.admin_count(md) == 0:
        console.print("no admin yet: make the first one on this machine with\n"
                      "  gristmill users add <name> --admin\n"
                      f"then log in from anywhere: gristmill login http://{host}:{port} --token <token>",
                      soft_wrap=True)
    import os

    os.environ["GRISTMILL_LOG_JSON"] = "1"   # each server process logs JSON lines on stderr, with request ids
    uvicorn.run("gristmill.server.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=False, log_config=None)
