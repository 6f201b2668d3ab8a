"""Identity commands: ``users``, ``tokens``, ``projects``, ``login``, ``logout``, ``whoami``."""

from __future__ import annotations

import typer

from gristmill.cli.output import console, emit_json, err, table

JSON = typer.Option(False, "--json", help="Print one JSON object.")
users = typer.Typer(help="Users of the team server (admins).", no_args_is_help=True)
tokens = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
projects = typer.Typer(help="Projects: list, share, members.", invoke_without_command=True)


def _call(name: str, /, **params):
    from gristmill.client import call

    return call(name, **params)


def _password(ask: bool, stdin: bool) -> str | None:
    import sys

    if stdin:
        return sys.stdin.readline().rstrip("\n")
    if ask:
        return typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return None


@users.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name (lower-case letters, digits, '_', '.', '-')."),
    admin: bool = typer.Option(False, "--admin", help="The user manages users and sees every project."),
    password: bool = typer.Option(False, "--password", help="Ask for a password (for the dashboard "
                                  "and `gristmill login --user`)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    as_json: bool = JSON,
) -> None:
    """Add a user and print a first API token for them (shown once)."""
    made = _call("users.add", name=name, admin=admin, password=_password(password, password_stdin))
    if as_json:
        emit_json(made)
        return
    console.print(f"added {'admin' if admin else 'user'} {name}; their first API token "
                  f"(shown once, expires {made['token_expires_at']}):\n  {made['token']}\n"
                  f"they log in with: gristmill login <server URL> --token <token>", soft_wrap=True)


@users.command("list")
def users_list(as_json: bool = JSON) -> None:
    """Every user."""
    found = _call("users.list")
    if as_json:
        emit_json(found)
        return
    table("Users", ["user", "admin", "disabled", "password", "created"],
          [[u["name"], "yes" if u["is_admin"] else "", "yes" if u["disabled"] else "",
            "yes" if u["has_password"] else "", u["created_at"]] for u in found["users"]])


@users.command("disable")
def users_disable(name: str = typer.Argument(..., help="User name."),
                  enable: bool = typer.Option(False, "--enable", help="Enable the user again.")) -> None:
    """Disable a user: every token of theirs stops working at once."""
    _call("users.disable", name=name, disabled=not enable)
    console.print(f"{name} is {'enabled' if enable else 'disabled'}")


@users.command("password")
def users_password(name: str = typer.Argument(..., help="User name (yourself, or anyone for an admin)."),
                   password_stdin: bool = typer.Option(False, "--password-stdin", help="Read it from stdin.")) -> None:
    """Set a password."""
    _call("users.password", name=name, password=_password(True, password_stdin))
    console.print(f"password of {name} set")


@tokens.command("create")
def tokens_create(
    project: str = typer.Option(None, "--project", help="Scope the token to one project..."),
    role: str = typer.Option(None, "--role", help="...with this role there: viewer, editor or owner "
                             "(at most yours). A viewer token is what a client of a bento needs."),
    expires: str = typer.Option("90d", "--expires", help="Lifetime: 90d, 12h, 2w or 'never'."),
    label: str = typer.Option("", "--label", help="What the token is for."),
    user: str = typer.Option(None, "--user", help="Admins: make the token for this user."),
    as_json: bool = JSON,
) -> None:
    """Create an API token; it is printed once and stored only as a hash."""
    made = _call("tokens.create", project=project, role=role, expires=expires, label=label, user=user)
    if as_json:
        emit_json(made)
        return
    scope = f"{made['role']} on {made['project']}" if made["project"] else f"everything {made['user_name']} may do"
    err.print(f"token {made['id']} ({scope}; expires {made['expires_at'] or 'never'}), shown once:")
    console.print(made["token"], soft_wrap=True)


@tokens.command("list")
def tokens_list(all_users: bool = typer.Option(False, "--all", help="Admins: every user's tokens."),
                as_json: bool = JSON) -> None:
    """Your tokens (never their secrets)."""
    found = _call("tokens.list", all_users=all_users)
    if as_json:
        emit_json(found)
        return
    columns = ["id"] + (["user"] if all_users else []) + ["scope", "label", "expires", "revoked"]
    table("Tokens", columns,
          [[t["id"]] + ([t["user_name"]] if all_users else []) +
           [f"{t['role']} on {t['project']}" if t["project"] else "user", t["label"],
            (t["expires_at"] or "never")[:10], (t["revoked_at"] or "")[:10]] for t in found["tokens"]])


@tokens.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="The token's id (`gristmill tokens list`)."),
                  as_json: bool = JSON) -> None:
    """Revoke a token: it stops working at once."""
    done = _call("tokens.revoke", token_id=token_id)
    if as_json:
        emit_json(done)
        return
    console.print(f"token {token_id} revoked at {done['revoked_at']}")


@projects.callback()
def projects_main(ctx: typer.Context, as_json: bool = JSON) -> None:
    """The projects you may see, with your role and their owner (`projects share` to share one)."""
    if ctx.invoked_subcommand is not None:
        return
    found = _call("projects.list")
    if as_json:
        emit_json(found)
        return
    table(f"Projects in {found['workspace']}", ["project", "your role", "owner", "spec"],
          [[p["project"], p["role"], p["owner"] or "-", "yes" if p["has_spec"] else "no"]
           for p in found["projects"]])


@projects.command("share")
def projects_share(
    project: str = typer.Argument(..., help="Project name."),
    user: str = typer.Option(..., "--user", help="Who to share it with."),
    role: str = typer.Option(..., "--role", help="viewer (reads), editor (changes), owner (shares), "
                             "or none to take the role away."),
    as_json: bool = JSON,
) -> None:
    """Give a user a role on a project (owners and admins)."""
    done = _call("projects.share", project=project, user=user, role=None if role == "none" else role)
    if as_json:
        emit_json(done)
        return
    console.print(f"{user} on {project}: {done['before'] or 'no role'} -> {done['after'] or 'no role'}")


@projects.command("delete")
def projects_delete(
    project: str = typer.Argument(..., help="Project name."),
    confirm: str = typer.Option(..., "--confirm", help="The project's name again: deleting cannot be undone."),
    as_json: bool = JSON,
) -> None:
    """Delete a project and everything it holds (owners and admins); the audit trail keeps its records."""
    done = _call("projects.delete", project=project, confirm=confirm)
    if as_json:
        emit_json(done)
        return
    console.print(f"deleted {project}: {len(done['removed'])} things removed; kept: {', '.join(done['kept'])}")
    for item in done["removed"]:
        console.print(f"  - {item}")


@projects.command("members")
def projects_members(project: str = typer.Argument(..., help="Project name."), as_json: bool = JSON) -> None:
    """Who holds which role on a project."""
    found = _call("projects.members", project=project)
    if as_json:
        emit_json(found)
        return
    table(f"Members of {project}", ["user", "role"], [[m["user"], m["role"]] for m in found["members"]])


def login(
    url: str = typer.Argument(..., help="The server, e.g. http://127.0.0.1:8700"),
    token: str = typer.Option(None, "--token", help="An API token (else: --user and a password)."),
    user: str = typer.Option(None, "--user", help="Log in with this user's password; a new token is made."),
    token_stdin: bool = typer.Option(False, "--token-stdin", help="Read the token from stdin."),
) -> None:
    """Store a token for the CLI (owner-only file): from then on commands go through the server."""
    import sys

    from gristmill.client import credentials
    from gristmill.client.dispatch import Target, remote
    from gristmill.errors import GristmillError

    url = url.rstrip("/")
    if token_stdin:
        token = sys.stdin.readline().strip()
    if token is None:
        if user is None:
            raise GristmillError("give --token TOKEN (or --token-stdin), or --user NAME to log in with a password")
        password = typer.prompt("password", hide_input=True)
        token = remote(Target(url, None), "auth.login", name=user, password=password)["token"]
    me = remote(Target(url, token), "whoami")
    path = credentials.save(url, token, me["user"])
    console.print(f"logged in to {url} as {me['user']} ({path}, owner-only); commands now go through "
                  "the server (`gristmill logout` to work locally)")


def logout() -> None:
    """Forget the stored token: commands work locally again."""
    from gristmill.client import credentials

    console.print("logged out" if credentials.forget() else "not logged in")


def whoami(as_json: bool = JSON) -> None:
    """Who you are to Gristmill: user, admin or not, and your projects with roles."""
    from gristmill.client import server_target

    me = _call("whoami")
    target = server_target()
    me["server"] = target.url if target else None
    if as_json:
        emit_json(me)
        return
    where = f"on {me['server']}" if me["server"] else "locally (no server: the workspace's OS user)"
    console.print(f"{me['user']} ({me['kind']}{', admin' if me['admin'] else ''}) {where}")
    for name, role in me["projects"].items():
        console.print(f"  {name}: {role}")
