"""``gristmill features``: apply definitions, build training sets, materialize, list."""

from __future__ import annotations

import typer

from gristmill.cli.output import console, emit_json, say_left_out, table

app = typer.Typer(help="Feast features: apply, dataset, materialize, list.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print one JSON object.")
PROJECT = typer.Argument(..., help="Project name or spec file.")


def _call(name: str, project: str, /, **params):
    """Operation ``name`` on ``project`` (a spec file is registered first)."""
    from gristmill.cli.stages import project_name
    from gristmill.client import call

    return call(name, project=project_name(project), **params)


@app.command()
def apply(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Build feature tables, write feature_repo/projects/<project>.py and run `feast apply`."""
    result = _call("features.apply", project)
    if as_json:
        emit_json(result)
        return
    console.print(f"applied {result['features']} features in {len(result['feature_views'])} views: "
                  f"{result['definitions']}")


@app.command()
def suggest(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Propose feature tables from the ingested tables: key, timestamp and kind of each, with why.

    Prints a `features:` section to paste into the spec (its label table and entity key are used)."""
    found = _call("features.suggest", project)
    if as_json:
        emit_json({k: v for k, v in found.items() if k != "yaml"})
        return
    console.print(found["yaml"], highlight=False, soft_wrap=True)


@app.command()
def dataset(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Build a point-in-time correct training set from the label table."""
    made = _call("features.dataset", project)
    if as_json:
        emit_json(made)
        return
    console.print(f"training set {made['id']}: {made['path']}")
    say_left_out(made.get("labels_left_out") or {}, "not in the training set")


@app.command()
def materialize(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Load the latest feature values into the online store (incremental after the first run)."""
    state = _call("features.materialize", project)
    if as_json:
        emit_json(state)
        return
    wrote = sum((state.get("written") or {}).values())
    held = sum((state.get("entities") or {}).values())
    console.print(f"materialized {len(state['views'])} views as of {state['end']}: {wrote} entity rows "
                  f"written, {held} held online, in {state.get('seconds', 0)} s")


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """List feature views: the project that owns each and the projects whose service uses it."""
    from gristmill.client import call

    rows = call("features.list")["feature_views"]
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
    removed = _call("features.remove", project)["removed_views"]
    if as_json:
        emit_json({"project": project, "removed_views": removed})
        return
    console.print(f"removed {len(removed)} feature views of {project}: {', '.join(removed) or 'none'}")
