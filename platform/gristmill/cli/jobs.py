"""``gristmill jobs list|show|watch|cancel|logs``, ``gristmill workers`` and ``gristmill worker``."""

from __future__ import annotations

import typer

from gristmill.cli.output import console, emit_json, err, table

app = typer.Typer(help="Jobs on the workers: list, show, watch, cancel, logs.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="Print one JSON object instead of tables.")
JOB = typer.Argument(..., help="Job id (from `gristmill jobs list`).")


def show_submitted(job: dict, as_json: bool) -> None:
    if as_json:
        emit_json(job)
        return
    console.print(f"job {job['id']} ({job['kind']} {job.get('project') or ''}) is {job['state']}; "
                  f"follow it with: gristmill jobs watch {job['id']}", soft_wrap=True)


def _row(job: dict) -> list:
    from gristmill.client.follow import describe

    took = job.get("run_seconds")
    return [job["id"], job["kind"], job.get("project") or "", job["user"], describe(job),
            job.get("worker") or "", job.get("attempt"), "" if took is None else f"{took:.1f}s",
            job["created_at"][:19]]


@app.command("list")
def list_jobs(
    project: str = typer.Option(None, "--project", "-p", help="Only this project's jobs."),
    state: str = typer.Option(None, "--state", help="queued, dispatched, running, succeeded, failed, "
                              "cancelled, or active."),
    user: str = typer.Option(None, "--user", help="Only this user's jobs."),
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    offset: int = typer.Option(0, "--offset", min=0),
    as_json: bool = JSON,
) -> None:
    """Jobs newest first: the ones of projects you may see, and your own."""
    from gristmill.client import call

    result = call("jobs.list", project=project, state=state, user=user, limit=limit, offset=offset)
    if as_json:
        emit_json(result)
        return
    table(f"{len(result['jobs'])} of {result['total']} job(s); {result['workers_live']} worker(s) live",
          ["id", "kind", "project", "user", "state", "worker", "attempt", "ran", "submitted"],
          [_row(j) for j in result["jobs"]])
    if not result["workers_live"] and any(j["state"] == "queued" for j in result["jobs"]):
        err.print("[yellow]no worker is running: queued jobs wait until one starts (`gristmill worker`)[/]")


@app.command()
def show(job: str = JOB, as_json: bool = JSON) -> None:
    """One job: state, progress, result or error."""
    from gristmill.client import call
    from gristmill.client.follow import describe

    found = call("jobs.show", job=job)
    if as_json:
        emit_json(found)
        return
    table(f"job {found['id']}", ["kind", "project", "user", "state", "attempt", "worker", "waited", "ran"],
          [[found["kind"], found.get("project") or "", found["user"], describe(found),
            f"{found['attempt']}/{found['max_attempts']}", found.get("worker") or "",
            _secs(found.get("queue_wait_seconds")), _secs(found.get("run_seconds"))]])
    if found.get("error"):
        err.print(f"[red]{found['error']}[/]", highlight=False, markup=False)
    if found.get("result") is not None:
        import json

        console.print_json(json.dumps(found["result"], default=str))


def _secs(value) -> str:
    return "" if value is None else f"{value:.1f}s"


@app.command()
def watch(job: str = JOB, as_json: bool = JSON) -> None:
    """Follow a job to its end with a progress bar; exit 1 if it fails."""
    from gristmill.client import call
    from gristmill.client.follow import follow

    found = call("jobs.show", job=job)
    result = follow(found, lambda j: call("jobs.show", job=j),
                    lambda j, since: call("jobs.logs", job=j, since=since), show=not as_json)
    if as_json:
        emit_json(result)
    else:
        console.print(f"job {job} succeeded")


@app.command()
def cancel(job: str = JOB, as_json: bool = JSON) -> None:
    """Cancel a job (yours, or any of a project you own)."""
    from gristmill.client import call

    found = call("jobs.cancel", job=job)
    if as_json:
        emit_json(found)
        return
    note = "" if found["state"] == "cancelled" else " (its worker stops it within seconds)"
    console.print(f"job {job}: {found['state'] if found['state'] == 'cancelled' else 'cancel asked'}{note}")


@app.command()
def logs(
    job: str = JOB,
    follow_: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until the job ends."),
    as_json: bool = JSON,
) -> None:
    """The job's log lines (its worker's output, JSON records shown as text)."""
    import time

    from gristmill.client import call

    since, every, ended = 0, [], False
    while True:
        got = call("jobs.logs", job=job, since=since)
        since = got["next"]
        every += got["lines"]
        if not as_json:
            for line in got["lines"]:
                console.print(f"{line['at'][11:23]} {line['level']:<7} {line['message']}", markup=False,
                              highlight=False, soft_wrap=True)
        if not follow_ or ended:
            break
        if len(got["lines"]) < 1000:  # caught up: stop after one more read once the job has ended
            ended = call("jobs.show", job=job)["state"] in ("succeeded", "failed", "cancelled")
            if not ended:
                time.sleep(1)
    if as_json:
        emit_json({"job": job, "lines": every})


def workers(as_json: bool = JSON) -> None:
    """The workers: host, slots busy of total, live / lost / stopped."""
    from gristmill.client import call

    result = call("workers.list")
    if as_json:
        emit_json(result)
        return
    table(f"{len(result['workers'])} worker(s)", ["name", "host", "pid", "slots", "status", "seen"],
          [[w["name"], w["host"], w["pid"], f"{w['slots_busy']}/{w['slots']}", w["status"],
            f"{w['seen_seconds_ago']}s ago"] for w in result["workers"]])


def worker(
    slots: int = typer.Option(None, "--slots", min=1, help="Jobs' slots this worker offers (default: its "
                              "CPU cores)."),
    name: str = typer.Option(None, "--name", help="Worker name (default: host-pid)."),
    memory_mb: int = typer.Option(None, "--memory-mb", min=64, help="Memory it offers, for jobs that "
                                  "ask a limit."),
    port: int = typer.Option(None, "--port", min=0, help="Serve /healthz, /readyz and /metrics on this "
                             "port (0: any free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address of the probes."),
) -> None:
    """Run jobs from the queue (the broker in gristmill.yaml `jobs.broker` or GRISTMILL_BROKER_URL;
    a SQLite file in the workspace by default). Start any number, on any machine sharing the
    workspace folder and the metadata database; stop with Ctrl-C."""
    from gristmill.jobs.worker import run_worker
    from gristmill.workspace import Workspace

    run_worker(Workspace.resolve(), name=name, slots=slots, memory_mb=memory_mb, port=port, host=host)
