"""``gristmill monitor``: drift and quality jobs, their schedules and history; ``gristmill scheduler``."""

from __future__ import annotations

from pathlib import Path

import typer

from gristmill.cli.output import console, emit_json, table

app = typer.Typer(help="Monitoring: Evidently drift and quality jobs, schedules, history, alerts.",
                  no_args_is_help=True)

PROJECT = typer.Argument(..., help="Project name or spec file.")
JOB = typer.Option(None, "--job", "-j", help="Job name (default: every job of the project).")
JSON = typer.Option(False, "--json", help="Print one JSON object.")


def _ws():
    from gristmill.workspace import Workspace

    return Workspace.resolve()


def _spec(ws, project: str):
    from gristmill.pipeline import project_spec

    return project_spec(ws, project)


@app.command("run")
def run_(
    project: str = PROJECT,
    job: str = JOB,
    current: Path = typer.Option(None, "--current", help="Parquet/CSV of current feature rows (e.g. a "
                                 "newly ingested batch) instead of the job's window."),
    as_json: bool = JSON,
) -> None:
    """Run the project's monitoring jobs now: drift, quality, reports, history, alerts."""
    from gristmill.errors import GristmillError
    from monitoring.jobs import find_job, load_jobs
    from monitoring.runner import run_job

    if current is not None and not current.is_file():
        raise GristmillError(f"no such file: {current}")
    ws = _ws()
    spec = _spec(ws, project)
    jobs = [find_job(spec, job)[0]] if job else [j for j, _ in load_jobs(spec).values()]
    results = [run_job(ws, spec, j, current_file=current) for j in jobs]
    if as_json:
        emit_json({"runs": results})
        return
    for r in results:
        console.print(_line(r))
        if r.get("history", {}).get("html_path"):
            console.print(f"  report: {r['history']['html_path']}")
        for reason in (r.get("alerts") or {}).get("reasons", []):
            console.print(f"  [red]alert[/]: {reason}")


def _line(r: dict) -> str:
    h = r.get("history", {})
    if r["status"] == "skipped":
        return f"{r['project']}/{r['job']}: skipped: {r.get('message')}"
    drift = r.get("drift", {})
    cols = drift.get("columns", [])
    text = (f"{r['project']}/{r['job']}: {r['status']}: {len(drift.get('drifted_columns', []))}/{len(cols)} "
            f"columns drifted (share {drift.get('drift_share', 0):.2f}), {h.get('n_current')} rows "
            f"({h.get('n_sampled')} sampled), model v{r.get('model_version')}")
    if h.get("quality") is not None:
        text += f", {h['quality_metric']} {h['quality']:.3f} on {h.get('n_labelled')} labelled"
    return text


@app.command("schedule")
def schedule(
    project: str = PROJECT,
    job: str = typer.Option("default", "--job", "-j", help="Job name; a job file is written if it has none."),
    cron: str = typer.Option(None, "--cron", help="Five-field crontab line (UTC), e.g. '0 * * * *'."),
    every: int = typer.Option(None, "--every", min=1, help="Run every this many seconds instead."),
    grace: int = typer.Option(3600, "--misfire-grace", min=1, help="Seconds a missed run may be late "
                              "and still be caught up (once)."),
    as_json: bool = JSON,
) -> None:
    """Register a job with the scheduler (`gristmill scheduler` runs it)."""
    from gristmill.errors import GristmillError
    from monitoring import scheduler
    from monitoring.jobs import JobSpec, ScheduleSpec, jobs_dir, load_jobs, write_job

    if (cron is None) == (every is None):
        raise GristmillError("give exactly one of --cron '0 * * * *' and --every SECONDS")
    ws = _ws().ensure()
    spec = _spec(ws, project)
    try:
        when = ScheduleSpec(cron=cron, every_seconds=every, misfire_grace_seconds=grace)
    except ValueError as exc:
        raise GristmillError(f"--cron: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    jobs = load_jobs(spec)
    where = None
    if job in jobs and jobs[job][1] != "implicit default job":
        definition, where = jobs[job]
        definition = definition.model_copy(update={"schedule": when})
        if where.endswith((".yaml", ".yml")):
            write_job(spec.project, definition)
    else:
        definition = JobSpec(name=job, schedule=when)
        where = str(write_job(spec.project, definition))
    stored = scheduler.schedule(ws.root, spec.project, definition, jobs_dir())
    if as_json:
        emit_json({**stored, "definition": where})
        return
    console.print(f"scheduled {stored['id']} ({stored['trigger']}), next run {stored['next_run']}; "
                  f"definition: {where}. `gristmill scheduler` runs it.")


@app.command("unschedule")
def unschedule(project: str = typer.Argument(..., help="Project name."),
               job: str = typer.Option("default", "--job", "-j", help="Job name.")) -> None:
    """Remove a job's schedule (its definition stays)."""
    from gristmill.errors import GristmillError
    from gristmill.workspace import check_project_name
    from monitoring import scheduler

    ws = _ws()
    if not scheduler.unschedule(ws.root, check_project_name(project), job):
        raise GristmillError(f"{project}:{job} is not scheduled (see `gristmill monitor list`)")
    console.print(f"unscheduled {project}:{job}")


@app.command("list")
def list_(project: str = typer.Argument(None, help="Project name (default: every project)."),
          as_json: bool = JSON) -> None:
    """Monitoring jobs: where each is defined, its schedule and next run."""
    from gristmill.spec import load_spec
    from monitoring import scheduler
    from monitoring.jobs import load_jobs

    ws = _ws()
    stored = {s["id"]: s for s in scheduler.list_scheduled(ws.root)}
    projects = [ws.require_project(project)] if project else ws.projects()
    rows = []
    for name in projects:
        if not ws.spec_path(name).is_file():
            continue
        for job, (definition, where) in load_jobs(load_spec(ws.spec_path(name))).items():
            s = stored.pop(f"{name}:{job}", None)
            rows.append({"project": name, "job": job, "defined_in": where,
                         "schedule": definition.schedule.model_dump() if definition.schedule else None,
                         "scheduled": s is not None, "next_run": s["next_run"] if s else None})
    orphans = [s for s in stored.values() if not project or s["project"] == project]
    if as_json:
        emit_json({"jobs": rows, "scheduled_without_definition": orphans})
        return
    table("Monitoring jobs", ["project", "job", "schedule", "next run", "defined in"],
          [[r["project"], r["job"], (r["schedule"] or {}).get("cron") or
            (f"every {r['schedule']['every_seconds']} s" if r["schedule"] else "-"),
            r["next_run"] or ("-" if not r["scheduled"] else "paused"), r["defined_in"]] for r in rows])
    for s in orphans:
        console.print(f"[yellow]scheduled but not defined[/]: {s['id']} (gristmill monitor unschedule "
                      f"{s['project']} --job {s['job']})")


@app.command("history")
def history_(project: str = typer.Argument(..., help="Project name."), job: str = JOB,
             limit: int = typer.Option(20, "--limit", "-n", min=1, help="Latest runs to show."),
             as_json: bool = JSON) -> None:
    """The trend: one row per run (drift share, drifted columns, quality, alerts)."""
    from monitoring import history

    ws = _ws()
    ws.require_project(project)
    rows = history.read(ws.root, project, job, limit)
    if as_json:
        emit_json({"project": project, "runs": rows})
        return
    if not rows:
        console.print(f"no monitoring runs of {project!r} yet: `gristmill monitor run {project}`")
        return

    def num(v, fmt=".2f"):
        return "-" if v is None else format(v, fmt)

    table(f"Monitoring history of {project}",
          ["started (UTC)", "job", "status", "model", "rows", "drift share", "drifted", "quality", "alerts"],
          [[r["started_at"][5:16].replace("T", " "), r["job"], r["status"], r["model_version"] or "-",
            r["n_current"], f"{num(r['drift_share'])} {_bar(r['drift_share'])}",
            ", ".join((r["drifted_columns"] or [])[:2]) + (" ..." if len(r["drifted_columns"] or []) > 2 else ""),
            "-" if r["quality"] is None else f"{r['quality_metric']} {r['quality']:.3f}",
            len((r["alerts"] or {}).get("reasons", []))] for r in rows])


def _bar(share) -> str:
    if share is None:
        return ""
    return "#" * round(share * 5) + "." * (5 - round(share * 5))


def scheduler_command(
    poll: float = typer.Option(5.0, "--poll", min=0.5, help="Seconds between looks at the job store."),
) -> None:
    """Run every project's scheduled monitoring jobs (long-running; Ctrl-C stops it)."""
    import logging
    import signal
    import threading

    from monitoring import scheduler

    ws = _ws().ensure()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=[logging.StreamHandler(), logging.FileHandler(ws.logs / "scheduler.log")])
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"scheduler on {ws.root}: {len(scheduler.list_scheduled(ws.root))} jobs stored; "
                  "Ctrl-C stops it")
    scheduler.serve(ws.root, poll=poll, stop=stop)
