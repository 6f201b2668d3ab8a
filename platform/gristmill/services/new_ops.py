"""``gristmill new`` and ``gristmill templates``: from a sentence (or a requirements file) to a spec."""

from __future__ import annotations

from pathlib import Path

from gristmill.errors import Forbidden, GristmillError
from gristmill.identity.roles import Action
from gristmill.services.context import Context
from gristmill.services.registry import operation


@operation("templates.list", "GET", "/templates", None)
def list_templates(ctx: Context) -> dict:
    """Every project template (built-in and ``<workspace>/templates/*.yaml``): name, task, metric."""
    from gristmill.requirements.templates import load_templates

    return {"templates": [{"name": t.name, "title": t.title, "task": t.task, "metric": t.metric, "cv": t.cv,
                           "horizon_days": t.horizon_days, "label_recipe": t.label.recipe, "source": t.source}
                          for t in load_templates(ctx.ws.root).values()]}


@operation("templates.show", "GET", "/templates/{name}", None)
def show_template(ctx: Context, name: str) -> dict:
    """One template in full: words, label recipe, metric, CV, features, serving, gate."""
    from gristmill.requirements.templates import get_template

    return get_template(name, ctx.ws.root).model_dump(mode="json")


@operation("projects.new", "POST", "/projects/{project}/new", Action.ingest, changes=True, creates_project=True)
def new(ctx: Context, project: str, objective: str, path: str | None = None, data_description: str = "",
        target_metric: str = "", deployment: str = "", answers: dict | None = None, budget: int = 60,
        embeddings: bool = True) -> dict:
    """Ingest the folder, understand the objective against its tables, and propose a complete spec:
    every choice with its evidence and confidence; unsure ones as questions (then no spec)."""
    import yaml

    from gristmill.requirements.profile import profile
    from gristmill.requirements.proposal import OpenQuestions, build_spec
    from gristmill.requirements.templates import load_templates
    from gristmill.requirements.understand import Request, RulesAndEmbeddings
    from gristmill.services.data_ops import ingest
    from gristmill.spec import dump_spec, parse_spec

    if path is None:
        raise GristmillError("give the folder of the export (--data)")
    if not ctx.is_local:
        raise Forbidden("the server reads no path a caller names: run `gristmill new` on the data's machine")
    if not objective or not objective.strip():
        raise GristmillError("the objective is empty: say what to predict")
    if budget < 5:
        raise GristmillError("--budget must be at least 5 seconds")
    data = Path(path).resolve()
    if not data.exists():
        raise GristmillError(f"no such data folder: {path}")
    report = ingest(ctx, project, path=str(data))
    tables = profile(ctx.ws, project)
    request = Request(objective, data_description, target_metric, deployment, project, dict(answers or {}))
    understanding = RulesAndEmbeddings(embeddings).understand(request, tables, load_templates(ctx.ws.root))
    out = {"project": project, "template": understanding.value("template"),
           "choices": [c.as_dict() for c in understanding.choices.values()],
           "questions": [c.as_dict() for c in understanding.questions], "spec": None, "notes": [],
           "ingest": {"tables": [t["name"] for t in report["tables"]], "input_rows": report["input_rows"],
                      "quarantined_rows": report["quarantined_rows"]}}
    if understanding.template is None or understanding.questions:
        return out
    try:
        spec, notes = build_spec(ctx.ws, project, data, understanding, budget, [t.name for t in tables])
    except OpenQuestions as exc:
        out["questions"] = [c.as_dict() for c in exc.questions]
        return out
    out["spec"] = dump_spec(parse_spec(spec, f"{project}.yaml"))
    out["notes"] = notes
    ctx.note(before=None, after={"template": out["template"], "spec": bool(out["spec"])})
    return out
