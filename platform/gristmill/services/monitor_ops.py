"""Monitoring: run jobs now, their history, schedules."""

from __future__ import annotations

from gristmill.errors import GristmillError
from gristmill.identity.roles import Action
from gristmill.services.context import Context
from gristmill.services.feature_ops import project_spec
from gristmill.services.registry import operation


@operation("monitor.run", "POST", "/projects/{project}/monitor/run", Action.monitor, changes=True, job=True)
def run(ctx: Context, project: str, job: str | None = None, current: str | None = None) -> dict:
    """Run the project's monitoring jobs now: drift, quality, reports, history, alerts. ``current``
    (a local Parquet/CSV file of feature rows) is for local use only."""
    from pathlib import Path

    from gristmill.audit import lineage
    from gristmill.errors import Forbidden
    from monitoring.jobs import find_job, load_jobs
    from monitoring.runner import run_job

    if current is not None:
        if not ctx.is_local:
            raise Forbidden("the server reads no path a caller names: run with the job's window")
        if not Path(current).is_file():
            raise GristmillError(f"no such file: {current}")
    spec = project_spec(ctx, project)
    jobs = [find_job(spec, job)[0]] if job else [j for j, _ in load_jobs(spec).values()]
    results = [run_job(ctx.ws, spec, j, current_file=Path(current) if current else None) for j in jobs]
    edges = []
    for r in results:
        run_id = (r.get("history") or {}).get("run_id") or f"{r['job']}@{(r.get('history') or {}).get('started_at')}"
        if r.get("model_version"):
            edges.append((f"model:{r['model_version']}", f"monitor:{run_id}"))
    lineage.record(ctx.md, project, edges, ctx.actor)
    ctx.note(before=None, after=[{"job": r["job"], "status": r["status"]} for r in results])
    return {"runs": results}


@operation("monitor.history", "GET", "/projects/{project}/monitor/history", Action.read)
def history(ctx: Context, project: str, job: str | None = None, limit: int = 20) -> dict:
    """The trend: one row per run (drift share, drifted columns, quality, alerts)."""
    from monitoring import history as runs

    ctx.ws.require_project(project)
    return {"project": project, "runs": runs.read(ctx.ws.root, project, job, max(1, limit))}


@operation("monitor.schedule", "POST", "/projects/{project}/monitor/schedule", Action.monitor, changes=True)
def schedule(ctx: Context, project: str, job: str = "default", cron: str | None = None,
             every: int | None = None, grace: int = 3600) -> dict:
    """Register a job with the scheduler (`gristmill scheduler` runs it)."""
    from monitoring import scheduler
    from monitoring.jobs import JobSpec, ScheduleSpec, jobs_dir, load_jobs, write_job

    if (cron is None) == (every is None):
        raise GristmillError("give exactly one of --cron '0 * * * *' and --every SECONDS")
    if (every is not None and every < 1) or grace < 1:
        raise GristmillError("--every and --misfire-grace are whole seconds, at least 1")
    ctx.ws.ensure()
    spec = project_spec(ctx, project)
    try:
        when = ScheduleSpec(cron=cron, every_seconds=every, misfire_grace_seconds=grace)
    except ValueError as exc:
        raise GristmillError(f"--cron: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    jobs = load_jobs(spec)
    if job in jobs and jobs[job][1] != "implicit default job":
        definition, where = jobs[job]
        definition = definition.model_copy(update={"schedule": when})
        if where.endswith((".yaml", ".yml")):
            write_job(spec.project, definition)
    else:
        definition = JobSpec(name=job, schedule=when)
        where = str(write_job(spec.project, definition))
    stored = scheduler.schedule(ctx.ws.root, spec.project, definition, jobs_dir())
    ctx.note(before=None, after={"job": job, "trigger": stored.get("trigger")})
    return {**stored, "definition": where}


@operation("monitor.unschedule", "POST", "/projects/{project}/monitor/unschedule", Action.monitor, changes=True)
def unschedule(ctx: Context, project: str, job: str = "default") -> dict:
    """Remove a job's schedule (its definition stays)."""
    from monitoring import scheduler

    if not scheduler.unschedule(ctx.ws.root, project, job):
        raise GristmillError(f"{project}:{job} is not scheduled (see `gristmill monitor list`)")
    ctx.note(before={"job": job, "scheduled": True}, after={"job": job, "scheduled": False})
    return {"project": project, "job": job, "unscheduled": True}


@operation("monitor.list", "GET", "/monitor/jobs", None)
def list_jobs(ctx: Context, project: str | None = None) -> dict:
    """Monitoring jobs of the caller's projects: where each is defined, its schedule and next run."""
    from gristmill.identity.policy import authorize, visible_projects
    from gristmill.spec import load_spec
    from monitoring import scheduler
    from monitoring.jobs import load_jobs

    if project:
        authorize(ctx.md, ctx.principal, Action.read, project)
        names = [ctx.ws.require_project(project)]
    else:
        names = visible_projects(ctx.md, ctx.principal, ctx.ws.projects())
    stored = {s["id"]: s for s in scheduler.list_scheduled(ctx.ws.root) if s["project"] in names}
    rows = []
    for name in names:
        if not ctx.ws.spec_path(name).is_file():
            continue
        for job, (definition, where) in load_jobs(load_spec(ctx.ws.spec_path(name))).items():
            s = stored.pop(f"{name}:{job}", None)
            rows.append({"project": name, "job": job, "defined_in": where,
                         "schedule": definition.schedule.model_dump() if definition.schedule else None,
                         "scheduled": s is not None, "next_run": s["next_run"] if s else None})
    return {"jobs": rows, "scheduled_without_definition": list(stored.values())}


@operation("monitor.drift", "POST", "/projects/{project}/monitor/drift", Action.monitor, changes=True, job=True)
def drift(ctx: Context, project: str) -> dict:
    """One Evidently drift report of the data's latest period (its last 30 days of labelled entities,
    features as of their own times) against the latest training set; the run is added to the
    Evidently workspace (``evidently ui``)."""
    from gristmill import pipeline
    from gristmill.audit import lineage
    from gristmill.training import registry

    report = pipeline.monitor(ctx.ws, project_spec(ctx, project)).model_dump(mode="json")
    champion = registry.champion_version(ctx.ws, project)
    if champion:
        name = report.get("name") or report.get("html_path")
        lineage.record(ctx.md, project, [(f"model:{champion}", f"monitor:{name}")], ctx.actor)
    ctx.note(before=None, after={"drifted": report.get("dataset_drift"), "html": report.get("html_path")})
    return report
