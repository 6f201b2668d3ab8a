"""``gristmill new`` (a sentence or a requirements file to a spec, then the whole path) and
``gristmill templates list|show``."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from pydantic import BaseModel, ConfigDict, Field

from gristmill.cli.output import console, emit_json, err, table
from gristmill.errors import GristmillError

templates = typer.Typer(help="Project templates: churn, fraud, lifetime value, demand, lead scoring, yours.",
                        no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print one JSON object.")
STOP = {"predict", "which", "will", "the", "in", "next", "of", "a", "an", "to", "for", "and", "who", "what",
        "days", "day", "be", "is", "are", "my", "our", "from", "with", "how", "many", "much", "each", "score"}


class Requirements(BaseModel):
    """A requirements file (``gristmill new --from FILE``)."""

    model_config = ConfigDict(extra="forbid")
    project_name: str | None = Field(None, description="Project name (lower-case letters, digits, '_').")
    data_source: str = Field(description="Folder (or file) of the export; relative to the file's folder.")
    objective: str = Field(description="What to predict, in plain English.")
    data_description: str = Field("", description="What the data holds (helps choose the template).")
    target_metric: str = Field("", description="e.g. 'AUC > 0.85': becomes training.gate.")
    deployment: str = Field("", description="e.g. 'Production API serving 100k requests/day'.")
    budget_seconds: int | None = Field(None, ge=5, description="Training budget.")
    answers: dict[str, str] = Field(default_factory=dict, description="Answers to questions (as --answer).")


def _call(name: str, /, **params):
    from gristmill.client import call

    return call(name, **params)


@templates.command("list")
def list_templates(as_json: bool = JSON) -> None:
    """Every template: name, task, metric, CV, horizon, label recipe, where it comes from."""
    found = _call("templates.list")
    if as_json:
        emit_json(found)
        return
    table("Templates", ["name", "title", "task", "metric", "cv", "horizon", "label recipe", "source"],
          [[t["name"], t["title"], t["task"], t["metric"], t["cv"], t["horizon_days"] or "", t["label_recipe"],
            t["source"]] for t in found["templates"]])


@templates.command("show")
def show_template(name: str = typer.Argument(..., help="Template name."), as_json: bool = JSON) -> None:
    """One template in full (YAML, or --json)."""
    import yaml

    found = _call("templates.show", name=name)
    if as_json:
        emit_json(found)
        return
    console.print(yaml.safe_dump(found, sort_keys=False, allow_unicode=True), highlight=False, markup=False)


def _project_from(objective: str) -> str:
    words = [w for w in re.findall(r"[a-z]+", objective.lower()) if w not in STOP and len(w) > 2]
    return "_".join(words[:3]) or "project"


def new(
    objective: str = typer.Argument(None, help="What to predict, e.g. \"predict which customers will churn "
                                    "in the next 30 days\"."),
    data: Path = typer.Option(None, "--data", help="Folder of the export to ingest."),
    from_file: Path = typer.Option(None, "--from", help="A requirements YAML file (project_name, data_source, "
                                   "objective, data_description, target_metric, deployment)."),
    project: str = typer.Option(None, "--project", help="Project name (default: from the objective)."),
    budget: int = typer.Option(None, "--budget", min=5, help="Training budget in seconds (default 60)."),
    answer: list[str] = typer.Option(None, "--answer", help="Answer a question: NAME=VALUE (repeatable), "
                                     "e.g. --answer target=labels.churned."),
    directory: Path = typer.Option(Path("."), "--dir", help="Folder to write <project>.yaml into."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Run the whole path without asking; open questions "
                             "end it with exit code 1."),
    no_embeddings: bool = typer.Option(False, "--no-embeddings", help="Words only, no MiniLM similarities."),
    as_json: bool = JSON,
) -> None:
    """From a sentence to a running project: ingest, propose a spec (every choice with evidence and a
    confidence, unsure ones as questions), write <project>.yaml, then run it (asks first, or --yes)."""
    from gristmill.spec import read_yaml, validate
    from gristmill.workspace import check_project_name

    req = None
    if from_file is not None:
        if not from_file.is_file():
            raise GristmillError(f"{from_file}: no such requirements file")
        req = validate(Requirements, read_yaml(from_file) if from_file.is_file() else None,
                       from_file.name, "project_name, data_source, objective, ...")
        objective = objective or req.objective
        if data is None:
            source = Path(req.data_source).expanduser()
            data = source if source.is_absolute() else from_file.resolve().parent / source
    if not objective:
        raise GristmillError("say what to predict: gristmill new \"SENTENCE\" --data FOLDER (or --from FILE)")
    if data is None:
        raise GristmillError("give the export to learn from: --data FOLDER (or data_source in --from FILE)")
    answers = dict(req.answers) if req else {}
    for item in answer or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise GristmillError(f"--answer {item!r}: write NAME=VALUE")
        answers[name.strip()] = value.strip()
    name = check_project_name(project or (req.project_name if req and req.project_name else None)
                              or _project_from(objective))
    budget = budget or (req.budget_seconds if req and req.budget_seconds else None) or 60
    result = _call("projects.new", project=name, objective=objective, path=str(Path(data).resolve()),
                   data_description=req.data_description if req else "",
                   target_metric=req.target_metric if req else "", deployment=req.deployment if req else "",
                   answers=answers, budget=budget, embeddings=not no_embeddings)
    path = None
    if result["spec"]:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.yaml"
        path.write_text(result["spec"], encoding="utf-8")
        result["spec_path"] = str(path)
    if not as_json:
        _show(result, path)
    if result["questions"]:
        if as_json:
            emit_json(result)
        if yes or as_json:
            q = result["questions"][0]
            cands = ", ".join(str(c["value"]) for c in q["candidates"][:4]) or "none found"
            raise GristmillError(f"question {q['name']}: {q['evidence']} (candidates: {cands}); answer with "
                                 f"--answer {q['name']}=VALUE")
        raise typer.Exit(1)
    if not yes:
        if as_json:
            emit_json(result)
            return
        if not typer.confirm(f"Run {path} now (ingest, features, train, deploy, monitor)?", default=False):
            console.print(f"not run; later: gristmill run {path}")
            return
    from gristmill.cli.stages import next_steps, run_all, _ws
    from gristmill.client import server_target
    from gristmill.spec import load_spec

    spec = load_spec(path)
    summary = run_all(str(path), spec, None, quiet=as_json)
    if as_json:
        emit_json({**result, "run": summary})
    elif server_target() is None and summary.get("bento"):
        next_steps(_ws(), spec, summary)


def _show(result: dict, path: Path | None) -> None:
    from rich.markup import escape

    table(f"Proposal for {result['project']} (template {result['template']})",
          ["choice", "value", "confidence", "evidence"],
          [[c["name"], escape(str(c["value"])), f"{c['confidence']:.2f}" + (" ?" if c["question"] else ""),
            escape(c["evidence"])] for c in result["choices"]])
    for note in result.get("notes") or []:
        err.print(f"[dim]{escape(note)}[/]")
    for q in result["questions"]:
        cands = ", ".join(f"{c['value']} ({c['score']:.2f})" for c in q["candidates"][:4]) or "none found"
        err.print(f"[yellow]question[/] {q['name']}: {escape(q['evidence'])}; candidates: {escape(cands)}; "
                  f"answer with --answer {q['name']}=VALUE")
    if path is not None:
        console.print(f"wrote {path}")
