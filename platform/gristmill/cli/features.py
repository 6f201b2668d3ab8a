"""``gristmill features``: apply definitions, build training sets, materialize, list."""

from __future__ import annotations

import typer

from gristmill.cli.output import console, emit_json, table

app = typer.Typer(help="Feast features: apply, dataset, materialize, list.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print one JSON object.")
PROJECT = typer.Argument(..., help="Project name or spec file.")


def _ctx(project: str):
    from gristmill.pipeline import project_spec
    from gristmill.workspace import Workspace

    ws = Workspace.resolve()
    return ws, project_spec(ws, project)


@app.command()
def apply(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Build feature tables, write feature_repo/projects/<project>.py and run `feast apply`."""
    from gristmill import pipeline

    ws, spec = _ctx(project)
    result = pipeline.features_apply(ws, spec)
    if as_json:
        emit_json(result)
        return
    console.print(f"applied {result['features']} features in {len(result['feature_views'])} views: "
                  f"{result['definitions']}")


@app.command()
def suggest(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Propose feature tables from the ingested tables: key, timestamp and kind of each, with why.

    Prints a `features:` section to paste into the spec (its label table and entity key are used)."""
    from gristmill.features.suggest import as_yaml, suggest as run

    ws, spec = _ctx(project)
    found, skipped = run(ws, spec)
    if as_json:
        emit_json({"features": [s.entry for s in found], "why": {s.table: s.why for s in found},
                   "left_out": skipped})
        return
    console.print(as_yaml(found, skipped), highlight=False, soft_wrap=True)


@app.command()
def dataset(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Build a point-in-time correct training set from the label table."""
    from gristmill import pipeline

    ws, spec = _ctx(project)
    dataset_id, path = pipeline.features_dataset(ws, spec)
    if as_json:
        emit_json({"id": dataset_id, "path": str(path)})
        return
    console.print(f"training set {dataset_id}: {path}")


@app.command()
def materialize(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Load the latest feature values into the online store (incremental after the first run)."""
    from gristmill import pipeline

    ws, spec = _ctx(project)
    state = pipeline.features_materialize(ws, spec)
    if as_json:
        emit_json(state)
        return
    console.print(f"materialized {len(state['views'])} views from {state['start']} to {state['end']}")


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """List feature views: the project that owns each and the projects whose service uses it."""
    from gristmill.features.store import feature_views
    from gristmill.workspace import Workspace

    rows = feature_views(Workspace.resolve())
    if as_json:
        emit_json({"feature_views": rows})
        return
    table("Feature views", ["view", "owner", "used by", "features"],
          [[r["view"], r["project"], ", ".join(r["used_by"]), r["features"]] for r in rows])


@app.command()
def remove(project: str = typer.Argument(..., help="Project whose feature definitions to remove."),
           as_json: bool = JSON) -> None:
    """Remove a project's generated definitions and apply: its views leave the registry, every
    other project's stay. Refused while another project reuses one of its views."""
    from gristmill.features.store import remove_definitions
    from gristmill.workspace import Workspace, check_project_name

    removed = remove_definitions(Workspace.resolve(), check_project_name(project))
    if as_json:
        emit_json({"project": project, "removed_views": removed})
        return
    console.print(f"removed {len(removed)} feature views of {project}: {', '.join(removed) or 'none'}")
