"""``gristmill audit`` (read, verify) and ``gristmill lineage``."""

from __future__ import annotations

import typer

from gristmill.cli.output import console, emit_json, err, table

JSON = typer.Option(False, "--json", help="Print one JSON object.")
app = typer.Typer(help="The audit trail: every change, who, when, before and after; `verify` "
                  "checks its hash chain.", invoke_without_command=True)


@app.callback()
def audit_main(
    ctx: typer.Context,
    project: str = typer.Option(None, "--project", "-p", help="One project's records."),
    actor: str = typer.Option(None, "--user", help="One user's records."),
    action: str = typer.Option(None, "--action", help="One action's records, e.g. models.promote."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Latest records to show."),
    as_json: bool = JSON,
) -> None:
    """The audit records you may see, oldest first."""
    if ctx.invoked_subcommand is not None:
        return
    from gristmill.client import call

    found = call("audit.list", project=project, actor=actor, action=action, limit=limit)
    if as_json:
        emit_json(found)
        return
    table("Audit trail (--json for every field)", ["#", "at (UTC)", "who", "action", "project", "result", "after"],
          [[r["seq"], r["at"][:19].replace("T", " "), r["actor"], r["action"], r["project"] or "-",
            r["result"], _short(r["detail"].get("after") if r["result"] == "ok" else r["detail"].get("error"))]
           for r in found["records"]])


def _short(value) -> str:
    """``k=v k=v`` of a record's after (or its error), cut to 48 characters."""
    import json

    if isinstance(value, dict):
        text = " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}"
                        for k, v in value.items())
    else:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 48 else text[:45] + "..."


@app.command("verify")
def verify(as_json: bool = JSON) -> None:
    """Check the hash chain: exit 1 naming the first edited, removed or reordered record."""
    from gristmill.client import call
    from gristmill.errors import GristmillError

    found = call("audit.verify")
    if as_json:
        emit_json(found)
    if not found["ok"]:
        raise GristmillError(f"audit trail broken at record {found['problem']['seq']}: "
                             f"{found['problem']['reason']}")
    if not as_json:
        console.print(f"audit trail intact: {found['records']} records, every hash chained")


def lineage(
    project: str = typer.Argument(..., help="Project name."),
    model: str = typer.Option(None, "--model", help="A model version: what made it, what it fed."),
    node: str = typer.Option(None, "--node", help="Any node: file:<sha256>, table:<name>@<version>, "
                             "dataset:<id>, model:<n>, deployment:<project>, monitor:<run>."),
    as_json: bool = JSON,
) -> None:
    """The lineage graph: source files -> tables -> training sets -> models -> deployments -> monitoring."""
    from gristmill.client import call

    chosen = node or (f"model:{model}" if model else None)
    found = call("lineage.graph", project=project, node=chosen)
    if as_json:
        emit_json(found)
        return
    if chosen is None:
        table(f"Lineage of {project}", ["from", "to", "at", "by"],
              [[e["src"], e["dst"], e["at"], e["actor"]] for e in found["edges"]])
        return
    if not found["known"]:
        err.print(f"{chosen} is not in {project}'s lineage (see `gristmill lineage {project}`)")
    for title, key in (("made from (upstream)", "upstream"), ("fed (downstream)", "downstream")):
        table(f"{chosen}: {title}", ["from", "to", "at", "by"],
              [[e["src"], e["dst"], e["at"], e["actor"]] for e in found[key]])
