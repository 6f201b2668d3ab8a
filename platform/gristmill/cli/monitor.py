"""``gristmill monitor``: drift reports of current data against the training reference."""

from __future__ import annotations

from pathlib import Path

import typer

from gristmill.cli.output import console, emit_json

app = typer.Typer(help="Monitoring: Evidently drift reports.", no_args_is_help=True)


@app.command("run")
def run_(
    project: str = typer.Argument(..., help="Project name or spec file."),
    current: Path = typer.Option(None, "--current", help="Parquet/CSV of current feature rows "
                                 "(default: every entity's features as of now)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Compute a drift report now (HTML + JSON in the workspace)."""
    from gristmill import pipeline
    from gristmill.errors import GristmillError
    from gristmill.workspace import Workspace

    if current is not None and not current.is_file():
        raise GristmillError(f"no such file: {current}")
    ws = Workspace.resolve()
    result = pipeline.monitor(ws, pipeline.project_spec(ws, project), current)
    if as_json:
        emit_json(result.model_dump(mode="json"))
        return
    console.print(result.summary_line())
    console.print(f"report: {result.html_path}")
