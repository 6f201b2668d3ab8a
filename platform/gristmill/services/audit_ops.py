"""The audit trail and lineage, read."""

from __future__ import annotations

from gristmill.identity.roles import Action
from gristmill.services.context import Context
from gristmill.services.registry import operation


@operation("audit.list", "GET", "/audit", None)
def list_records(ctx: Context, project: str | None = None, actor: str | None = None,
                 action: str | None = None, limit: int = 1000) -> dict:
    """Audit records, oldest first: one project's (viewers of it), or every project the caller may
    see (admins: the whole trail, global actions included)."""
    from gristmill.audit import trail
    from gristmill.identity.policy import authorize, visible_projects
    from gristmill.services.project_ops import known_projects

    limit = max(1, min(limit, 100_000))
    if project:
        authorize(ctx.md, ctx.principal, Action.read, project)
        rows = trail.records(ctx.md, project=project, actor=actor, action=action, limit=limit)
    elif ctx.principal.kind == "local" or ctx.principal.is_admin:
        rows = trail.records(ctx.md, actor=actor, action=action, limit=limit)
    else:
        mine = visible_projects(ctx.md, ctx.principal, known_projects(ctx))
        rows = trail.records(ctx.md, projects=mine, actor=actor, action=action, limit=limit)
    return {"records": rows}


@operation("audit.verify", "GET", "/audit/verify", Action.read_audit_all)
def verify(ctx: Context) -> dict:
    """Check the whole hash chain: an edited, removed or reordered record is named (admins)."""
    from gristmill.audit import trail

    return trail.verify(ctx.md)


@operation("lineage.graph", "GET", "/projects/{project}/lineage", Action.read)
def graph(ctx: Context, project: str, node: str | None = None) -> dict:
    """The project's lineage; with ``node`` (``model:3``, ``file:<sha256>``, ``table:orders@v0001``,
    ...) what made it and what it fed."""
    from gristmill.audit import lineage

    return lineage.graph(ctx.md, project, node)
