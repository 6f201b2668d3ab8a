"""Top-level commands: init, run, demo, ingest, sql, train, deploy, serve, projects."""

from __future__ import annotations

from pathlib import Path

import typer

from gristmill.cli.output import console, emit_json, err, say_left_out, step, table
from gristmill.errors import GristmillError

JSON = typer.Option(False, "--json", help="Print one JSON object instead of tables.")
BUDGET = typer.Option(None, "--budget", min=5, help="Training budget in seconds (overrides the spec).")


def _ws():
    from gristmill.workspace import Workspace

    return Workspace.resolve()


def spec_file(project_or_file: str) -> Path | None:
    path = Path(project_or_file)
    return path if path.suffix in (".yaml", ".yml") or path.is_file() else None


def project_name(project_or_file: str) -> str:
    """The project a command acts on; a spec file is registered first (locally or on the server)."""
    from gristmill.client import call
    from gristmill.spec import dump_spec, load_spec
    from gristmill.workspace import check_project_name

    path = spec_file(project_or_file)
    if path is None:
        return check_project_name(project_or_file)
    spec = load_spec(path)
    base = path.resolve().parent
    sources = [s.model_copy(update={"path": str(p.resolve())})
               for s, p in zip(spec.sources, spec.source_paths(base))]
    spec = spec.model_copy(update={"sources": sources})
    call("projects.register", project=spec.project, spec=dump_spec(spec))
    return spec.project


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
    """Turn raw files into typed tables in the lake and the DuckDB catalog (through the server, the
    files are uploaded first)."""
    report = ingest_files(project, folder, jsonl, progress=not as_json)
    if as_json:
        emit_json(report)
        return
    show_ingest(report)


def ingest_files(project: str, folder: Path | None, jsonl: bool, progress: bool) -> dict:
    from gristmill.client import call, server_target
    from gristmill.client.dispatch import upload_paths
    from gristmill.spec import load_spec

    name = project_name(project)
    if server_target() is None:
        return call("data.ingest", progress=progress, project=name,
                    path=str(folder.resolve()) if folder is not None else None, jsonl=jsonl)
    if folder is not None:
        files, sources = upload_paths([folder]), None
    else:  # the spec's sources, each into a folder of its own in one upload
        path = spec_file(project)
        if path is None:
            raise GristmillError("through the server, give the spec file or a folder to upload "
                                 f"(gristmill ingest {name}.yaml, or gristmill ingest {name} ./folder)")
        spec = load_spec(path)
        files, sources = [], []
        for i, source in enumerate(spec.source_paths(path.resolve().parent)):
            found = sorted(source.parent.glob(source.name)) if any(c in source.name for c in "*?[") else [source]
            for item in found:
                files += [(f"s{i}/{n}", stream) for n, stream in upload_paths([item])]
            sources.append({"folder": f"s{i}", **spec.sources[i].model_dump(exclude={"path"}, mode="json")})
    try:
        uploaded = call("data.upload", project=name, files=files)
    finally:
        for _, stream in files:
            stream.close()
    return call("data.ingest", project=name, upload=uploaded["upload"], sources=sources, jsonl=jsonl)


def show_ingest(report: dict) -> None:
    tables = report["tables"]
    table("Ingested tables", ["table", "version", "rows", "quarantined", "columns", "sources"],
          [[t["name"], t["version"] + ("" if t["changed"] else " (unchanged)"), t["rows"],
            t["quarantined_rows"], len(t["columns"]),
            ", ".join(t["sources"][:3]) + (" ..." if len(t["sources"]) > 3 else "")] for t in tables])
    table("Every row accounted for", ["input rows", "ingested", "quarantined", "bad files", "skipped files"],
          [[report["input_rows"], sum(t["rows"] for t in tables), report["quarantined_rows"],
            len(report["bad_files"]), len(report["skipped_files"])]])
    from rich.markup import escape  # file names and reasons are the user's text, not markup

    for bad in report["bad_files"]:
        err.print(f"[yellow]bad file[/] {escape(bad['path'])}: {escape(bad['reason'])}")
    for skipped in report["skipped_files"]:
        err.print(f"[dim]skipped[/] {escape(skipped['path'])}: {escape(skipped['reason'])}")
    for warning in report.get("warnings", []):
        err.print(f"[yellow]note[/] {escape(warning['path'])}: {escape(warning['reason'])}")
    if report["quarantined_rows"]:
        err.print(f"[dim]quarantined rows: gristmill sql {report['project']} "
                  "\"select * from _quarantine\"[/]")


def sql(
    project: str = typer.Argument(..., help="Project whose schema is searched first."),
    query: str = typer.Argument(..., help="SQL to run, e.g. \"select count(*) from billing\"."),
    as_json: bool = JSON,
    limit: int = typer.Option(50, "--limit", help="Rows to show (JSON: all rows)."),
) -> None:
    """Query the tables of your projects in DuckDB (read-only; no file access outside them)."""
    from gristmill.client import call
    from gristmill.workspace import check_project_name

    result = call("data.sql", project=check_project_name(project), query=query)
    columns, rows = result["columns"], result["rows"]
    if as_json:
        emit_json({"columns": columns, "rows": [dict(zip(columns, r)) for r in rows],
                   "truncated": result["truncated"]})
        return
    table(f"{len(rows)} row(s)", columns, [list(r) for r in rows[:limit]])
    if len(rows) > limit:
        err.print(f"(showing {limit} of {len(rows)} rows; --limit to change)")
    if result["truncated"]:
        err.print(f"(the query returned more than {result['row_limit']} rows: only those are shown)")


def train(
    project: str = typer.Argument(..., help="Project name or spec file."),
    budget: int = BUDGET,
    dataset: str = typer.Option(None, "--dataset", help="Training-set id (default: the latest)."),
    detach: bool = typer.Option(False, "--detach", help="With a server: print the job id and return at "
                                "once (`gristmill jobs watch ID` follows it)."),
    slots: int = typer.Option(None, "--slots", min=1, help="With a server: worker slots the job asks."),
    memory_mb: int = typer.Option(None, "--memory-mb", min=64, help="With a server: the job's memory limit."),
    workers: int = typer.Option(None, "--workers", min=1, max=64, help="Processes running the study's "
                                "trials at once (default: training.workers); with a server, jobs on "
                                "other workers."),
    as_json: bool = JSON,
) -> None:
    """Tune LightGBM with Optuna, track it in MLflow, register the winner (champion if it wins).

    With a server configured (`gristmill login`, GRISTMILL_URL) the training runs as a job on a
    worker (`gristmill worker`); this follows it with a progress bar."""
    from gristmill.client import call
    from gristmill.client.dispatch import job_options

    with job_options(detach=detach, slots=slots, memory_mb=memory_mb):
        result = call("models.train", progress=not as_json, project=project_name(project), budget=budget,
                      dataset=dataset, workers=workers)
    if detach and "state" in result and "kind" in result:
        from gristmill.cli.jobs import show_submitted

        show_submitted(result, as_json)
        return
    if as_json:
        emit_json(result)
        return
    show_train(result)


def show_train(result: dict) -> None:
    table("Registered model", ["model", "version", "alias", "task", f"holdout {result['metric']}",
                               "trials", "seconds"],
          [[result["model_name"], result["version"], result["alias"], result["task"],
            f"{result['holdout_score']:.4f}", result["n_trials"], result["seconds"]]])
    from rich.markup import escape

    if result.get("promotion"):
        err.print(f"[dim]promotion gate: {escape(result['promotion']['reason'])}[/]")
    gate = result.get("gate") or {}
    if gate.get("status") == "failed":
        err.print(f"[yellow]quality gate failed[/] (registered, never champion): "
                  f"{escape('; '.join(gate['failures']))}")
    elif gate.get("status") == "passed":
        skipped = f", {len(gate['skipped'])} skipped" if gate.get("skipped") else ""
        err.print(f"[dim]quality gate passed ({len(gate['checks'])} check(s){skipped})[/]")
    for notice in result.get("feature_notices") or []:  # (escaped: `[customer_number]` is not markup)
        err.print(f"[yellow]{escape(notice['message'])}[/]", highlight=False)
    say_left_out(result.get("labels_left_out") or {}, "left out of training")


def predict(
    project: str = typer.Argument(..., help="Project name."),
    source: Path = typer.Argument(..., help="File of feature rows: .parquet, .csv, .tsv or .jsonl: every "
                                  "model feature as a column, or the entity key to read them from the "
                                  "online store (docs/serving.md, Batch scoring)."),
    output: Path = typer.Option(..., "--output", "-o", help="Parquet file to write the scores to."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", min=1, help="Rows scored at a time."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Score absent features (and ids "
                                       "the online store does not know) as missing values, counted."),
    keep: list[str] = typer.Option(None, "--keep", help="A column that is not a feature, copied to the "
                                   "output (repeatable); any other such column is an error."),
    as_json: bool = JSON,
) -> None:
    """Score a file with the champion model, chunk by chunk (bounded memory)."""
    from gristmill.serving.batch import predict_file
    from gristmill.workspace import check_project_name

    result = predict_file(_ws(), check_project_name(project), source, output, chunk_rows,
                          progress=not as_json, allow_missing=allow_missing, keep=keep or [])
    if as_json:
        emit_json(result)
        return
    console.print(f"scored {result['rows']} rows with {project} version {result['model_version']}: "
                  f"{result['output']}")
    if result["features_from_store"]:
        console.print(f"{len(result['features_from_store'])} of {result['features']} features read from "
                      "the online store by entity key")
    if result["missing_features"]:
        console.print(f"[yellow]{len(result['missing_features'])} of {result['features']} features absent, "
                      f"scored as missing values (--allow-missing)[/yellow]")
    if result["unknown_ids"]:
        console.print(f"[yellow]{result['unknown_ids']} ids unknown to the online store, scored with "
                      "missing features (--allow-missing)[/yellow]")


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
    as_json: bool = JSON,
) -> None:
    """Write bentos/<project>/ (service.py + bentofile.yaml) with its champion (and challenger)
    copied into BentoML's model store, so `bentoml build` packs them; or bentos/_gateway/ with --all."""
    from gristmill.serving.bento import write_gateway
    from gristmill.serving.bundle import command_prefix

    _one_or_all(project, every)
    ws = _ws()
    if every:
        folder = write_gateway(ws.ensure(), port, token_env)
        if as_json:
            emit_json({"bento": str(folder), "service": "service:Gateway", "port": port})
            return
        console.print(f"wrote {folder}\nstart it: cd {folder} && {command_prefix(ws)} bentoml serve "
                      f"service:Gateway --host 127.0.0.1 --port {port}")
        return
    from gristmill.client import call

    done = call("serving.deploy", project=project_name(project))
    if as_json:
        emit_json(done)
        return
    models = ", ".join(f"{alias} {tag}" for alias, tag in done.get("models", {}).items()) or "none yet"
    console.print(f"wrote {done['bento']} (models in BentoML's store: {models})\n"
                  f"start it: cd {done['bento']} && {command_prefix(ws)} bentoml serve "
                  f"{done['service']} --host 127.0.0.1 --port {done['port']}\n"
                  f"or build a bento that carries them: cd {done['bento']} && bentoml build")


def serve(
    project: str = typer.Argument(None, help="Project name or spec file."),
    every: bool = ALL,
    port: int = typer.Option(None, "--port", help="Port (default: the spec's serving.port; 3000 with --all)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    token_env: str = TOKEN_ENV,
) -> None:
    """Start the project's BentoML service on this machine (writes it first), or with --all the
    gateway that serves every project, loading models on first use into a memory-bounded cache.
    Both answer only callers with a token of the project (``gristmill tokens create``)."""
    import os
    import shutil
    import sys

    from gristmill.client.dispatch import call, local_only
    from gristmill.serving.bento import write_gateway

    _one_or_all(project, every)
    ws = _ws()
    if every:
        folder, service, port = write_gateway(ws.ensure(), port or 3000, token_env), "service:Gateway", port or 3000
    else:
        with local_only():  # the service runs here, on this workspace
            done = call("serving.deploy", project=project_name(project))
        folder, service, port = done["bento"], done["service"], port or done["port"]
    from gristmill.serving.bundle import environment

    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    os.environ.update(environment(ws))  # the service reads its stores from these
    os.chdir(folder)
    os.execv(bentoml, [bentoml, "serve", service, "--host", host, "--port", str(port)])


def run(
    spec_file: Path = typer.Argument(..., help="Project spec (YAML)."),
    budget: int = BUDGET,
    as_json: bool = JSON,
) -> None:
    """Run the whole path: ingest, features, train, deploy, monitor (through the server when one
    is configured)."""
    from gristmill.client import server_target
    from gristmill.spec import load_spec

    spec = load_spec(spec_file)
    summary = run_all(str(spec_file), spec, budget, quiet=as_json)
    if as_json:
        emit_json(summary)
    elif summary.get("bento") is None:
        console.print(f"[yellow]{spec.project}: the model failed its quality gate[/]: not deployed "
                      f"(`gristmill models list {spec.project}` shows why)")
    elif server_target() is None:
        next_steps(_ws(), spec, summary)
    else:
        console.print(f"[bold green]Done.[/] {spec.project} is trained and deployed on the server.")


def run_all(spec_arg: str, spec, budget: int | None, quiet: bool = False) -> dict:
    """Every stage of ``spec`` in turn, each one operation of the service layer."""
    from gristmill.client import call

    say = (lambda _m: None) if quiet else step
    say(f"ingest: {len(spec.sources)} source(s) -> lake and DuckDB schema {spec.project!r}")
    report = ingest_files(spec_arg, None, False, progress=not quiet)
    if not quiet:
        show_ingest(report)
    project = spec.project
    say("features: feature tables, Feast definitions, feast apply")
    applied = call("features.apply", project=project)
    say("features: point-in-time training set")
    dataset_id = call("features.dataset", project=project)["id"]
    say("features: materialize to the online store")
    call("features.materialize", project=project)
    say(f"train: {', '.join(spec.training.trainers)}; budget {budget or spec.training.budget_seconds}s")
    result = call("models.train", progress=not quiet, project=project, budget=budget, dataset=dataset_id)
    if not quiet:
        show_train(result)
    if result.get("alias") == "rejected":  # failed its quality gate: nothing to deploy or monitor
        say("stopped: the model failed its quality gate (see above); deploy and monitor skipped")
        return {"project": project, "ingest": report, "features": applied, "training_set_id": dataset_id,
                "train": result, "bento": None, "drift": None}
    say("deploy: BentoML service")
    bento = call("serving.deploy", project=project)["bento"]
    say("monitor: Evidently drift report")
    drift = call("monitor.drift", project=project)
    return {"project": project, "ingest": report, "features": applied, "training_set_id": dataset_id,
            "train": result, "bento": bento, "drift": drift}


def next_steps(ws, spec, summary: dict) -> None:
    from gristmill.client import call
    from gristmill.client.dispatch import local_only
    from gristmill.pipeline import sample_entity_id
    from gristmill.serving.bento import class_name

    port = spec.serving.port
    sample = sample_entity_id(ws, spec)
    key = spec.entity.key if spec.entity.key.isidentifier() else "entity_id"
    drift = summary["drift"]
    # the service answers token holders only: a viewer token of this project for the curl line,
    # in this workspace (the one the bento serves), as the local OS user
    with local_only():
        token = call("tokens.create", project=spec.project, role="viewer", label="demo curl")["token"]
    from gristmill.config import mlflow_tracking_uri
    from gristmill.serving.bundle import command_prefix

    console.print(f"""
[bold green]Done.[/] Project [bold]{spec.project}[/] is trained, registered and ready to serve.

Next steps:
  1. Browse runs and the registered model:
       uv run mlflow ui --backend-store-uri {mlflow_tracking_uri(ws)} --port 5000
  2. Serve predictions (or `uv run gristmill serve {spec.project}`; `bentoml build` packs the model into a bento):
       cd {summary['bento']} && {command_prefix(ws)} uv run bentoml serve service:{class_name(spec.project)} --port {port}
  3. Ask for one (in another terminal) with this viewer token of {spec.project}, shown once:
       curl -s -X POST http://127.0.0.1:{port}/predict_entity -H 'Content-Type: application/json' -H "Authorization: Bearer {token}" -d '{{"{key}": "{sample}"}}'
     More tokens: uv run gristmill tokens create --project {spec.project} --role viewer (see also `gristmill tokens list`, `revoke`)
  4. Read the drift report: {drift['html_path']}
  5. Explore features by hand: cd {ws.feature_repo} && uv run feast feature-views list
""", soft_wrap=True)


def demo(
    budget: int = typer.Option(45, "--budget", min=5, help="Training budget in seconds."),
    as_json: bool = JSON,
) -> None:
    """Lay down the bundled messy churn export and run the whole path on it."""
    from gristmill.client.dispatch import local_only
    from gristmill.demo.setup import lay_down
    from gristmill.spec import load_spec

    ws = _ws()
    spec_file = lay_down(ws)
    if not as_json:
        step(f"demo export laid down in {spec_file.parent}")
    spec = load_spec(spec_file)
    with local_only():  # the demo's export lies in this workspace
        summary = run_all(str(spec_file), spec, budget, quiet=as_json)
    summary["workspace"] = str(ws.root)
    if as_json:
        emit_json(summary)
    else:
        next_steps(ws, spec, summary)


def register(app: typer.Typer) -> None:
    for fn in (demo, init, run, ingest, sql, train, predict, deploy, serve):
        app.command()(fn)
