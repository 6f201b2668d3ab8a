"""Users, tokens, login and ``whoami``."""

from __future__ import annotations

from gristmill.errors import Forbidden, GristmillError, NotFound
from gristmill.identity import store
from gristmill.identity.policy import authorize, role_on, visible_projects
from gristmill.identity.roles import Action, Role
from gristmill.services.context import Context
from gristmill.services.registry import operation


@operation("users.add", "POST", "/users", Action.manage_users, changes=True)
def add_user(ctx: Context, name: str, admin: bool = False, password: str | None = None,
             token: bool = True) -> dict:
    """Add a user (admins only); with ``token`` the result holds a first API token, shown once."""
    user = store.add_user(ctx.md, name, admin=admin, password=password)
    ctx.note(before=None, after={"user": name, "admin": admin})
    if token:
        made = store.create_token(ctx.md, name, label="first token")
        user["token"] = made["token"]
        user["token_id"] = made["id"]
        user["token_expires_at"] = made["expires_at"]
    return user


@operation("users.list", "GET", "/users", Action.manage_users)
def list_users(ctx: Context) -> dict:
    """Every user (admins only)."""
    return {"users": store.list_users(ctx.md)}


@operation("users.disable", "POST", "/users/{name}/disable", Action.manage_users, changes=True)
def disable_user(ctx: Context, name: str, disabled: bool = True) -> dict:
    """Disable a user (every token of theirs stops working) or enable them again (admins only)."""
    before = bool(store.require_user(ctx.md, name).disabled)
    user = store.set_disabled(ctx.md, name, disabled)
    ctx.note(before={"disabled": before}, after={"disabled": disabled})
    return user


@operation("users.password", "POST", "/users/{name}/password", None, changes=True)
def set_password(ctx: Context, name: str, password: str) -> dict:
    """Set a user's password: their own, or anyone's for an admin."""
    if name != ctx.principal.name or ctx.principal.kind == "project-token":
        authorize(ctx.md, ctx.principal, Action.manage_users)
    if len(password) < 8:
        raise GristmillError("a password needs at least 8 characters")
    store.set_password(ctx.md, name, password)
    ctx.note(before=None, after={"user": name, "password": "changed"})
    return {"user": name, "password": "set"}


@operation("auth.login", "POST", "/auth/token", None, changes=True, open=True)
def login(ctx: Context, name: str, password: str, expires: str | None = None) -> dict:
    """Exchange a user name and password for a new user token (shown once)."""
    from gristmill.identity.principal import Principal

    made = store.login(ctx.md, name, password, expires)
    ctx.principal = Principal(name=name)  # the audit record names who logged in
    ctx.note(before=None, after={"token_id": made["id"], "user": name})
    return made


@operation("whoami", "GET", "/whoami", None)
def whoami(ctx: Context) -> dict:
    """The caller: user, admin or not, the token's scope, and their projects with roles."""
    p = ctx.principal
    if p.kind == "local":
        projects = {name: "owner" for name in ctx.ws.projects()}
    elif p.kind == "project-token":
        role = role_on(ctx.md, p, p.scope_project)
        projects = {p.scope_project: role.value} if role else {}
    else:
        mine = store.roles_of(ctx.md, p.name)
        projects = {name: role.value for name, role in sorted(mine.items())}
    return {"user": p.name, "kind": p.kind, "admin": p.is_admin, "token_id": p.token_id,
            "scope": {"project": p.scope_project, "role": p.scope_role.value} if p.scope_project else None,
            "projects": projects}


@operation("tokens.create", "POST", "/tokens", None, changes=True)
def create_token(ctx: Context, project: str | None = None, role: Role | None = None,
                 expires: str | None = None, label: str = "", user: str | None = None) -> dict:
    """A new API token (shown once): the caller's own, or scoped to one project with a role no
    higher than the caller's there (``project`` + ``role``). Admins may make one for ``user``."""
    p = ctx.principal
    if p.kind == "project-token":
        raise Forbidden("a project-scoped token cannot make tokens: use a user token")
    owner = user or p.name
    if p.kind == "local" and owner == p.name:
        store.ensure_user(ctx.md, owner, admin=True)  # the workspace's OS owner, as a user
    elif owner != p.name:
        authorize(ctx.md, p, Action.manage_users)
        store.require_user(ctx.md, owner)
    if (project is None) != (role is None):
        raise GristmillError("a project token needs both --project and --role")
    if project is not None:
        from gristmill.errors import ProjectNotFound
        from gristmill.services.project_ops import known_projects

        known = known_projects(ctx)
        if project not in known:
            raise ProjectNotFound(project, visible_projects(ctx.md, p, known))
        holder = ctx.principal if owner == p.name else store.authenticate_as(ctx.md, owner)
        held = role_on(ctx.md, holder, project)
        if held is None:
            authorize(ctx.md, holder, Action.read, project)  # raises NoAccess
        role = Role(role)
        if role.rank > held.rank:
            raise Forbidden(f"{owner!r} is {held.value} on {project!r}: a token cannot hold {role.value}")
    made = store.create_token(ctx.md, owner, project, role, expires, label)
    ctx.note(before=None, after={"token_id": made["id"], "user": owner, "project": project,
                                 "role": made["role"], "expires_at": made["expires_at"]})
    return made


@operation("tokens.list", "GET", "/tokens", None)
def list_tokens(ctx: Context, all_users: bool = False) -> dict:
    """The caller's tokens (never their secrets); ``all_users`` for admins."""
    if all_users:
        authorize(ctx.md, ctx.principal, Action.manage_users)
        return {"tokens": store.list_tokens(ctx.md)}
    return {"tokens": store.list_tokens(ctx.md, ctx.principal.name)}


@operation("tokens.revoke", "POST", "/tokens/{token_id}/revoke", None, changes=True)
def revoke_token(ctx: Context, token_id: str) -> dict:
    """Revoke a token by its id: one's own, or anyone's for an admin."""
    row = store.get_token(ctx.md, token_id)
    mine = row is not None and row.user_name == ctx.principal.name and ctx.principal.kind != "local"
    if not mine:
        try:
            authorize(ctx.md, ctx.principal, Action.manage_users)
        except Forbidden:
            row = None  # someone else's token is not theirs to know of
    if row is None:
        raise NotFound(f"no token {token_id!r} of yours (see `gristmill tokens list`)")
    made = store.revoke_token(ctx.md, token_id)
    ctx.note(before={"revoked_at": row.revoked_at}, after={"revoked_at": made["revoked_at"]})
    return made
