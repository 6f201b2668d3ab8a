"""Top-level commands: init, run, demo, ingest, sql, train, deploy, serve, projects."""

from __future__ import annotations

from pathlib import Path

import typer

from gristmill.cli.output import console, emit_json, err, step, table

JSON = typer.Option(False, "--json", help="Print one JSON object instead of tables.")
BUDGET = typer.Option(None, "--budget", min=5, help="Training budget in seconds (overrides the spec).")


def _ws():
    from gristmill.workspace import Workspace

    return Workspace.resolve()


def _spec(project: str):
    from gristmill.pipeline import project_spec

    return project_spec(_ws(), project)


def init(
    project: str = typer.Argument(..., help="Project name (lower-case letters, digits, '_')."),
    directory: Path = typer.Option(Path("."), "--dir", help="Folder to write <project>.yaml into."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing spec."),
) -> None:
    """Write a starter project spec to fill in."""
    from gristmill.errors import GristmillError
    from gristmill.templates import starter_spec
    from gristmill.workspace import check_project_name

    check_project_name(project)
    path = directory / f"{project}.yaml"
    if path.exists() and not force:
        raise GristmillError(f"{path} exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_spec(project), encoding="utf-8")
    console.print(f"wrote {path}: fill in sources, entity, features and label, then "
                  f"`gristmill run {path}`")


def ingest(
    project: str = typer.Argument(..., help="Project name or spec file."),
    folder: Path = typer.Argument(None, help="A file, folder or glob to ingest instead of the spec's "
                                  "sources (a new project needs no spec for this)."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Also write a JSONL copy of each table."),
    as_json: bool = JSON,
) -> None:
    """Turn raw files into typed tables in the lake and the DuckDB catalog."""
    from gristmill import pipeline
    from gristmill.workspace import check_project_name

    ws = _ws()
    if folder is None:
        spec = _spec(project)
        name = spec.project
    else:
        is_file = Path(project).suffix in (".yaml", ".yml")
        spec = _spec(project) if is_file else None
        name = spec.project if spec else check_project_name(project)
    report = pipeline.ingest(ws, name, spec, folder, jsonl=jsonl, progress=not as_json)
    if as_json:
        emit_json(report.model_dump(mode="json"))
        return
    show_ingest(report)


def show_ingest(report) -> None:
    table("Ingested tables", ["table", "version", "rows", "quarantined", "columns", "sources"],
          [[t.name, t.version + ("" if t.changed else " (unchanged)"), t.rows, t.quarantined_rows,
            len(t.columns), ", ".join(t.sources[:3]) + (" ..." if len(t.sources) > 3 else "")]
           for t in report.tables])
    table("Every row accounted for", ["input rows", "ingested", "quarantined", "bad files", "skipped files"],
          [[report.input_rows, sum(t.rows for t in report.tables), report.quarantined_rows,
            len(report.bad_files), len(report.skipped_files)]])
    for bad in report.bad_files:
        err.print(f"[yellow]bad file[/] {bad.path}: {bad.reason}")
    for skipped in report.skipped_files:
        err.print(f"[dim]skipped[/] {skipped.path}: {skipped.reason}")
    if report.quarantined_rows:
        err.print(f"[dim]quarantined rows: gristmill sql {report.project} "
                  "\"select * from _quarantine\"[/]")


def sql(
    project: str = typer.Argument(..., help="Project whose schema is searched first."),
    query: str = typer.Argument(..., help="SQL to run, e.g. \"select count(*) from billing\"."),
    as_json: bool = JSON,
    limit: int = typer.Option(50, "--limit", help="Rows to show (JSON: all rows)."),
) -> None:
    """Query the project's tables in DuckDB."""
    import duckdb

    from gristmill.errors import GristmillError
    from gristmill.sql import connect, literal

    ws = _ws()
    ws.require_project(project, spec=False)
    con = connect(ws.catalog, read_only=True)
    try:
        con.execute(f"SET search_path = {literal(project)}")
        cur = con.execute(query)
        if cur.description is None:
            console.print("ok")
            return
        columns = [d[0] for d in cur.description]
        rows = cur.fetchall()
    except duckdb.Error as exc:
        raise GristmillError(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    if as_json:
        emit_json({"columns": columns, "rows": [dict(zip(columns, r)) for r in rows]})
        return
    table(f"{len(rows)} row(s)", columns, [list(r) for r in rows[:limit]])
    if len(rows) > limit:
        err.print(f"(showing {limit} of {len(rows)} rows; --limit to change)")


def train(
    project: str = typer.Argument(..., help="Project name or spec file."),
    budget: int = BUDGET,
    dataset: str = typer.Option(None, "--dataset", help="Training-set id (default: the latest)."),
    as_json: bool = JSON,
) -> None:
    """Tune LightGBM with Optuna, track it in MLflow, register the winner (champion if it wins)."""
    from gristmill import pipeline

    result = pipeline.train(_ws(), _spec(project), budget=budget, dataset_id=dataset,
                            progress=not as_json)
    if as_json:
        emit_json(result.as_dict())
        return
    show_train(result)


def show_train(result) -> None:
    table("Registered model", ["model", "version", "alias", "task", f"holdout {result.metric}",
                               "trials", "seconds"],
          [[result.model_name, result.version, result.alias, result.task,
            f"{result.holdout_score:.4f}", result.n_trials, result.seconds]])
    if result.promotion:
        err.print(f"[dim]promotion gate: {result.promotion['reason']}[/]")


def predict(
    project: str = typer.Argument(..., help="Project name."),
    source: Path = typer.Argument(..., help="File of feature rows: .parquet, .csv, .tsv or .jsonl."),
    output: Path = typer.Option(..., "--output", "-o", help="Parquet file to write the scores to."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", min=1, help="Rows scored at a time."),
    as_json: bool = JSON,
) -> None:
    """Score a file with the champion model, chunk by chunk (bounded memory)."""
    from gristmill.serving.batch import predict_file
    from gristmill.workspace import check_project_name

    result = predict_file(_ws(), check_project_name(project), source, output, chunk_rows, progress=not as_json)
    if as_json:
        emit_json(result)
        return
    console.print(f"scored {result['rows']} rows with {project} version {result['model_version']}: "
                  f"{result['output']}")


ALL = typer.Option(False, "--all", help="The gateway: every project of the workspace from one service.")
TOKEN_ENV = typer.Option(None, "--token-env", help="With --all: environment variable holding the "
                         "API token the gateway requires (Authorization: Bearer <token>).")


def _one_or_all(project: str | None, every: bool) -> None:
    from gristmill.errors import GristmillError

    if bool(project) == every:
        raise GristmillError("give a project, or --all for the gateway that serves every project")


def deploy(
    project: str = typer.Argument(None, help="Project name or spec file."),
    every: bool = ALL,
    port: int = typer.Option(3000, "--port", help="With --all: the gateway's port."),
    token_env: str = TOKEN_ENV,
) -> None:
    """Write bentos/<project>/ (service.py + bentofile.yaml), or bentos/_gateway/ with --all."""
    from gristmill import pipeline
    from gristmill.serving.bento import class_name, write_gateway

    _one_or_all(project, every)
    if every:
        folder = write_gateway(_ws().ensure(), port, token_env)
        console.print(f"wrote {folder}\nstart it: cd {folder} && bentoml serve service:Gateway --port {port}")
        return
    spec = _spec(project)
    folder = pipeline.deploy(_ws(), spec)
    console.print(f"wrote {folder}\nstart it: cd {folder} && bentoml serve "
                  f"service:{class_name(spec.project)} --port {spec.serving.port}")


def serve(
    project: str = typer.Argument(None, help="Project name or spec file."),
    every: bool = ALL,
    port: int = typer.Option(None, "--port", help="Port (default: the spec's serving.port; 3000 with --all)."),
    token_env: str = TOKEN_ENV,
) -> None:
    """Start the project's BentoML service (writes it first), or with --all the gateway that serves
    every project, loading models on first use into a memory-bounded cache."""
    import os
    import shutil
    import sys

    from gristmill import pipeline
    from gristmill.serving.bento import class_name, write_gateway

    _one_or_all(project, every)
    ws = _ws()
    if every:
        folder, service, port = write_gateway(ws.ensure(), port or 3000, token_env), "Gateway", port or 3000
    else:
        spec = _spec(project)
        folder, service = pipeline.deploy(ws, spec), class_name(spec.project)
        port = port or spec.serving.port
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    os.chdir(folder)
    os.execv(bentoml, [bentoml, "serve", f"service:{service}", "--port", str(port)])


def run(
    spec_file: Path = typer.Argument(..., help="Project spec (YAML)."),
    budget: int = BUDGET,
    as_json: bool = JSON,
) -> None:
    """Run the whole path: ingest, features, train, deploy, monitor."""
    from gristmill.pipeline import register

    ws = _ws()
    spec = register(ws, spec_file)
    summary = run_all(ws, spec, budget, quiet=as_json)
    if as_json:
        emit_json(summary)
    else:
        next_steps(ws, spec, summary)


def run_all(ws, spec, budget: int | None, quiet: bool = False) -> dict:
    from gristmill import pipeline

    say = (lambda _m: None) if quiet else step
    say(f"ingest: {len(spec.sources)} source(s) -> lake and DuckDB schema {spec.project!r}")
    report = pipeline.ingest(ws, spec.project, spec, progress=not quiet)
    if not quiet:
        show_ingest(report)
    say("features: feature tables, Feast definitions, feast apply")
    applied = pipeline.features_apply(ws, spec)
    say("features: point-in-time training set")
    dataset_id, _ = pipeline.features_dataset(ws, spec)
    say("features: materialize to the online store")
    pipeline.features_materialize(ws, spec)
    say(f"train: {', '.join(spec.training.trainers)}; budget {budget or spec.training.budget_seconds}s")
    result = pipeline.train(ws, spec, budget=budget, dataset_id=dataset_id, progress=not quiet)
    if not quiet:
        show_train(result)
    say("deploy: BentoML service")
    bento = pipeline.deploy(ws, spec)
    say("monitor: Evidently drift report")
    drift = pipeline.monitor(ws, spec)
    return {"project": spec.project, "workspace": str(ws.root), "ingest": report.model_dump(mode="json"),
            "features": applied, "training_set_id": dataset_id, "train": result.as_dict(),
            "bento": str(bento), "drift": drift.model_dump(mode="json")}


def next_steps(ws, spec, summary: dict) -> None:
    from gristmill.pipeline import sample_entity_id
    from gristmill.serving.bento import class_name

    port = spec.serving.port
    sample = sample_entity_id(ws, spec)
    key = spec.entity.key if spec.entity.key.isidentifier() else "entity_id"
    drift = summary["drift"]
    console.print(f"""
[bold green]Done.[/] Project [bold]{spec.project}[/] is trained, registered and ready to serve.

Next steps:
  1. Browse runs and the registered model:
       uv run mlflow ui --backend-store-uri {ws.mlflow_uri} --port 5000
  2. Serve predictions:
       cd {summary['bento']} && uv run bentoml serve service:{class_name(spec.project)} --port {port}
  3. Ask for one (in another terminal):
       curl -s -X POST http://127.0.0.1:{port}/predict_entity -H 'Content-Type: application/json' -d '{{"{key}": "{sample}"}}'
  4. Read the drift report: {drift['html_path']}
  5. Explore features by hand: cd {ws.feature_repo} && uv run feast feature-views list
""", soft_wrap=True)


def projects(as_json: bool = JSON) -> None:
    """List the projects of this workspace."""
    ws = _ws()
    names = ws.projects()
    if as_json:
        emit_json({"workspace": str(ws.root), "projects": names})
        return
    table(f"Projects in {ws.root}", ["project"], [[n] for n in names])


def demo(
    budget: int = typer.Option(45, "--budget", min=5, help="Training budget in seconds."),
    as_json: bool = JSON,
) -> None:
    """Lay down the bundled messy churn export and run the whole path on it."""
    from gristmill.demo.setup import lay_down

    ws = _ws()
    spec_file = lay_down(ws)
    if not as_json:
        step(f"demo export laid down in {spec_file.parent}")
    from gristmill.pipeline import register

    spec = register(ws, spec_file)
    summary = run_all(ws, spec, budget, quiet=as_json)
    if as_json:
        emit_json(summary)
    else:
        next_steps(ws, spec, summary)


def register(app: typer.Typer) -> None:
    for fn in (demo, init, run, ingest, sql, train, predict, deploy, serve, projects):
        app.command()(fn)
