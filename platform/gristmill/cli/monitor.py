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


@app.command("run")
def run_(
    project: str = PROJECT,
    job: str = JOB,
    current: Path = typer.Option(None, "--current", help="Parquet/CSV of current feature rows (e.g. a "
                                 "newly ingested batch) instead of the job's window."),
    as_json: bool = JSON,
) -> None:
    """Run the project's monitoring jobs now: drift, quality, reports, history, alerts."""
    from gristmill.cli.stages import project_name
    from gristmill.client import call

    results = call("monitor.run", project=project_name(project), job=job,
                   current=str(current.resolve()) if current is not None else None)["runs"]
    if as_json:
        emit_json({"runs": results})
        return
    from rich.markup import escape

    for r in results:
        console.print(_line(r), markup=False, soft_wrap=True)
        h = r.get("history", {})
        if h.get("html_path"):
            console.print(f"  report: {h['html_path']}", markup=False, soft_wrap=True)
        for bad in (r.get("window") or {}).get("bad_files") or []:
            console.print(f"  [yellow]skipped unreadable file[/]: {escape(bad['file'])} ({escape(bad['reason'])})",
                          soft_wrap=True)
        if h.get("n_non_finite"):
            console.print(f"  [yellow]{h['n_non_finite']} infinite values[/] counted as out of range")
        if (r.get("evidently") or {}).get("agrees") is False:
            console.print(f"  [yellow]note[/]: {escape(r.get('message') or '')}", soft_wrap=True)
        for reason in (r.get("alerts") or {}).get("reasons", []):
            console.print(f"  [red]alert[/]: {escape(reason)}", soft_wrap=True)


def _line(r: dict) -> str:
    h = r.get("history", {})
    if r["status"] == "skipped":
        return f"{r['project']}/{r['job']}: skipped: {r.get('message')}"
    drift = r.get("drift", {})
    verdict = (drift.get("verdict") or {}).get("text") or (
        f"{len(drift.get('drifted_columns', []))}/{len(drift.get('columns', []))} columns drifted "
        f"(share {drift.get('drift_share', 0):.2f})")
    text = (f"{r['project']}/{r['job']}: {r['status']}: {verdict}; {h.get('n_current')} rows in the window "
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
    from gristmill.cli.stages import project_name
    from gristmill.client import call

    stored = call("monitor.schedule", project=project_name(project), job=job, cron=cron, every=every,
                  grace=grace)
    where = stored["definition"]
    if as_json:
        emit_json(stored)
        return
    console.print(f"scheduled {stored['id']} ({stored['trigger']}), next run {stored['next_run']}; "
                  f"definition: {where}. `gristmill scheduler` runs it.")


@app.command("unschedule")
def unschedule(project: str = typer.Argument(..., help="Project name."),
               job: str = typer.Option("default", "--job", "-j", help="Job name.")) -> None:
    """Remove a job's schedule (its definition stays)."""
    from gristmill.client import call

    call("monitor.unschedule", project=project, job=job)
    console.print(f"unscheduled {project}:{job}")


@app.command("list")
def list_(project: str = typer.Argument(None, help="Project name (default: every project)."),
          as_json: bool = JSON) -> None:
    """Monitoring jobs: where each is defined, its schedule and next run."""
    from gristmill.client import call

    found = call("monitor.list", project=project)
    rows, orphans = found["jobs"], found["scheduled_without_definition"]
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
    from gristmill.client import call

    rows = call("monitor.history", project=project, job=job, limit=limit)["runs"]
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
