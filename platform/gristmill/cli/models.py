"""``gristmill models``: the registered versions of a project, the promotion gate's history,
promotion and rollback by hand."""

from __future__ import annotations

import typer

from gristmill.cli.output import console, emit_json, table

app = typer.Typer(help="Registered models: list, history, promote, challenge, rollback.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print one JSON object.")
PROJECT = typer.Argument(..., help="Project name.")


def _call(name: str, /, **params):
    from gristmill.client import call

    return call(name, **params)


@app.command("list")
def list_(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Every registered version with its aliases and holdout scores, newest first."""
    found = _call("models.list", project=project)
    rows = found["versions"]
    if as_json:
        emit_json(found)
        return
    table(f"Models of {project}", ["version", "aliases", "created", "holdout", "gate", "training set"],
          [[r["version"], ", ".join(r["aliases"]), r["created_at"],
            ", ".join(f"{k[8:]} {v:.4f}" for k, v in r["scores"].items()), _gate(r), r["training_set_id"]]
           for r in rows])


def _gate(row: dict) -> str:
    """The quality gate's verdict; a failed one names why (it never becomes champion)."""
    status = row.get("gate", "none")
    if status == "failed":
        return "failed: " + "; ".join(row.get("gate_failures") or [])
    return "" if status == "none" else status


@app.command()
def history(project: str = PROJECT, as_json: bool = JSON) -> None:
    """Every alias move (by training, promotion or rollback): when, who, from, to, why."""
    found = _call("models.history", project=project)
    moves = found["moves"]
    if as_json:
        emit_json(found)
        return
    table(f"Alias moves of {project}", ["at", "by", "action", "alias", "from", "to", "reason"],
          [[m["at"], m["by"], m["action"], m["alias"], m.get("from_version"), m["to_version"],
            m.get("reason", "")] for m in moves])


@app.command()
def promote(
    project: str = PROJECT,
    version: str = typer.Option(None, "--version", help="Version to promote (default: the challenger)."),
    as_json: bool = JSON,
) -> None:
    """Make a version the champion by hand (serving picks it up on reload or restart)."""
    move = _call("models.promote", project=project, version=version)
    if as_json:
        emit_json(move)
        return
    console.print(f"{project}: champion is now version {move['to_version']} (was {move['from_version']})")


@app.command()
def challenge(
    project: str = PROJECT,
    version: str = typer.Option(..., "--version", help="Version to make the challenger."),
    as_json: bool = JSON,
) -> None:
    """Make a version the challenger: with serving.challenger_share (A/B) or serving.shadow in the
    spec, the service scores it beside the champion (POST /reload or restart)."""
    move = _call("models.challenge", project=project, version=version)
    if as_json:
        emit_json(move)
        return
    console.print(f"{project}: challenger is now version {move['to_version']} (was {move['from_version']})")


@app.command()
def rollback(
    project: str = PROJECT,
    to: str = typer.Option(None, "--to", help="Version to give the champion alias to "
                           "(default: the champion before the current one)."),
    as_json: bool = JSON,
) -> None:
    """Give the champion alias back to the previous champion (or to --to VERSION)."""
    move = _call("models.rollback", project=project, to=to)
    if as_json:
        emit_json(move)
        return
    console.print(f"{project}: champion is back to version {move['to_version']} "
                  f"(was {move['from_version']}); reload the service: POST /reload")
