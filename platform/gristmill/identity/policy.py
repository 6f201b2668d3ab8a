"""The one access decision: :func:`authorize`. Every API route, every CLI command (local or through
the server), both kinds of bento, the gateway, ``gristmill sql`` and the monitoring and feature
commands ask it; nothing else grants access. Default deny."""

from __future__ import annotations

from gristmill.errors import Forbidden, NoAccess
from gristmill.identity import store
from gristmill.identity.principal import Principal
from gristmill.identity.roles import PROJECT_ACTIONS, Action, Role
from gristmill.metadata import Metadata

ADMIN_ACTIONS = {Action.manage_users, Action.read_audit_all, Action.probe_jobs}


def role_on(md: Metadata, principal: Principal, project: str) -> Role | None:
    """The caller's effective role on ``project`` (None: no access)."""
    if principal.kind == "local" or principal.is_admin:
        return Role.owner
    if principal.kind == "service":  # a serving.api_token_env secret: its own project only
        return principal.scope_role if principal.scope_project == project else None
    user_role = store.role_of(md, principal.name, project)
    if principal.kind == "project-token":
        if principal.scope_project != project or user_role is None or principal.scope_role is None:
            return None
        # a project token never holds more than its user holds now
        return min(user_role, principal.scope_role, key=lambda r: r.rank)
    return user_role


def authorize(md: Metadata, principal: Principal, action: Action, project: str | None = None) -> Role | None:
    """Allow ``action`` (on ``project`` for project actions) or raise.

    Raises :class:`~gristmill.errors.NoAccess` (404) when the caller has no role on the project,
    :class:`~gristmill.errors.Forbidden` (403) when the role is too low or the action needs an
    admin. Returns the caller's role on the project (None for global actions)."""
    action = Action(action)
    if action in PROJECT_ACTIONS:
        if not project:
            raise ValueError(f"{action.value} needs a project")
        role = role_on(md, principal, project)
        if role is None:
            raise NoAccess(project)
        needed = PROJECT_ACTIONS[action]
        if role.rank < needed.rank:
            raise Forbidden(f"{action.value} on {project!r} needs the {needed.value} role; "
                            f"{principal.name!r} is {role.value} there")
        return role
    if action in ADMIN_ACTIONS:
        if principal.kind == "local" or principal.is_admin:
            return None
        raise Forbidden(f"{action.value.replace('_', ' ')} is for admins; {principal.name!r} is not one")
    if action is Action.create_project:
        if principal.kind in ("project-token", "service"):
            raise Forbidden("a project-scoped token cannot create projects: use a user token")
        return None
    raise Forbidden(f"unknown action {action!r}")  # default deny


def visible_projects(md: Metadata, principal: Principal, names: list[str]) -> list[str]:
    """Those of ``names`` the caller may read."""
    if principal.kind == "local" or principal.is_admin:
        return sorted(names)
    if principal.kind in ("project-token", "service"):
        return [n for n in names if role_on(md, principal, n) is not None]
    mine = store.roles_of(md, principal.name)
    return sorted(n for n in names if n in mine)


def authorize_job(md: Metadata, principal: Principal, job, change: bool = False) -> None:
    """May the caller see (``change``: cancel) this job? Its own user may; others need to read its
    project (cancel: be its owner). A job of no project is its user's and the admins' only."""
    if principal.kind == "local" or principal.is_admin:
        return
    if principal.kind == "user" and principal.name == job.user_name:
        return
    if principal.kind == "project-token" and principal.name == job.user_name \
            and job.project == principal.scope_project:
        return
    if job.project is None:
        from gristmill.errors import NotFound

        raise NotFound(f"no job {job.id!r}")
    authorize(md, principal, Action.manage_jobs if change else Action.read, job.project)
