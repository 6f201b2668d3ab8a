"""The ``gristmill`` command: one sub-command per stage, plus ``demo``, ``init`` and ``run``.

User mistakes end in one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from gristmill.errors import GristmillError

app = typer.Typer(
    name="gristmill",
    help="Gristmill: messy files in, served and monitored models out, on your own machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    workspace: str = typer.Option(None, "--workspace", "-w", envvar="GRISTMILL_WORKSPACE",
                                  help="Workspace folder holding all state (default: ./workspace)."),
) -> None:
    import os

    if workspace:
        os.environ["GRISTMILL_WORKSPACE"] = workspace


def _register() -> None:
    from gristmill.cli import access, audit, features, jobs, models, monitor, new, server, stages

    stages.register(app)
    app.command("new")(new.new)
    app.add_typer(new.templates, name="templates")
    app.add_typer(features.app, name="features")
    app.add_typer(models.app, name="models")
    app.add_typer(monitor.app, name="monitor")
    app.command("scheduler")(monitor.scheduler_command)
    app.add_typer(access.users, name="users")
    app.add_typer(access.tokens, name="tokens")
    app.add_typer(access.projects, name="projects")
    app.add_typer(audit.app, name="audit")
    app.add_typer(jobs.app, name="jobs")
    app.command()(jobs.worker)
    app.command()(jobs.workers)
    for fn in (access.login, access.logout, access.whoami, audit.lineage, server.server):
        app.command()(fn)


_register()


def main() -> None:
    """Console entry point."""
    import os
    import warnings

    if not os.environ.get("GRISTMILL_WARNINGS"):
        # the stack's own deprecation notices are not the user's business (GRISTMILL_WARNINGS=1
        # shows them); some libraries reset the warning filters, so silence the display itself
        warnings.simplefilter("ignore")
        warnings.showwarning = lambda *args, **kwargs: None
    from gristmill.cli.output import json_mode

    json_mode(sys.argv[1:])
    try:
        app(standalone_mode=False)
    except GristmillError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        if not _is_click_error(exc):
            raise
        message = exc.format_message()
        if message:  # (a group called bare has shown its help already: nothing to add)
            ctx = getattr(exc, "ctx", None)
            where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            typer.echo(f"error: {message}{where}", err=True)
        sys.exit(exc.exit_code)


def _is_click_error(exc: Exception) -> bool:
    """Typer raises its bundled copy of click's exceptions (typer._click), not the click package's."""
    kinds = []
    try:
        from typer._click.exceptions import ClickException

        kinds.append(ClickException)
    except ImportError:  # a typer without a bundled click
        pass
    import click

    kinds.append(click.ClickException)
    return isinstance(exc, tuple(kinds))
