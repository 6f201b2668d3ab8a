"""Projects: list, spec, sharing, members."""

from __future__ import annotations

import hashlib

from gristmill.errors import GristmillError, SpecError
from gristmill.identity import store
from gristmill.identity.policy import visible_projects
from gristmill.identity.roles import Action, Role
from gristmill.services.context import Context
from gristmill.services.registry import operation


def known_projects(ctx: Context) -> list[str]:
    """Projects of the workspace and of the metadata database."""
    return sorted(set(ctx.ws.projects()) | set(store.all_projects(ctx.md)))


@operation("projects.list", "GET", "/projects", None)
def list_projects(ctx: Context) -> dict:
    """The projects the caller may see, with their role and owner."""
    from gristmill.identity.policy import role_on

    names = visible_projects(ctx.md, ctx.principal, known_projects(ctx))
    rows = []
    for name in names:
        role = role_on(ctx.md, ctx.principal, name)
        rows.append({"project": name, "role": role.value if role else None,
                     "owner": store.owner_of(ctx.md, name),
                     "has_spec": ctx.ws.spec_path(name).is_file()})
    return {"workspace": str(ctx.ws.root), "projects": rows}


@operation("projects.members", "GET", "/projects/{project}/members", Action.read)
def members(ctx: Context, project: str) -> dict:
    """Who holds which role on the project."""
    return {"project": project, "members": store.members(ctx.md, project)}


@operation("projects.share", "POST", "/projects/{project}/share", Action.share, changes=True)
def share(ctx: Context, project: str, user: str, role: Role | None = None) -> dict:
    """Give ``user`` a role on the project (owners and admins); no role takes it away."""
    if store.owner_of(ctx.md, project) is None:  # made before the server knew owners
        from gristmill.errors import ProjectNotFound

        if project not in ctx.ws.projects():
            raise ProjectNotFound(project, visible_projects(ctx.md, ctx.principal, known_projects(ctx)))
        store.claim_project(ctx.md, project, ctx.principal.name)
    moved = store.share(ctx.md, project, user, Role(role) if role else None, ctx.actor)
    ctx.note(before={"user": user, "role": moved["before"]}, after={"user": user, "role": moved["after"]})
    return moved


@operation("projects.spec", "GET", "/projects/{project}/spec", Action.read)
def get_spec(ctx: Context, project: str) -> dict:
    """The project's registered spec (YAML)."""
    path = ctx.ws.spec_path(ctx.ws.require_project(project))
    return {"project": project, "spec": path.read_text(encoding="utf-8")}


@operation("projects.register", "PUT", "/projects/{project}/spec", Action.spec, changes=True,
           creates_project=True)
def register_spec(ctx: Context, project: str, spec: str) -> dict:
    """Register (or change) the project's spec from its YAML text; source paths should be absolute."""
    import yaml

    from gristmill.spec import dump_spec, parse_spec

    try:
        data = yaml.safe_load(spec)
    except yaml.YAMLError as exc:
        raise SpecError(f"{project}.yaml", "", f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    parsed = parse_spec(data, f"{project}.yaml")
    if parsed.project != project:
        raise GristmillError(f"the spec names project {parsed.project!r}, not {project!r}")
    text = dump_spec(parsed)
    target = ctx.ws.ensure().spec_path(project)
    before = hashlib.sha256(target.read_bytes()).hexdigest() if target.is_file() else None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    after = hashlib.sha256(text.encode()).hexdigest()
    ctx.note(before={"spec_sha256": before}, after={"spec_sha256": after})
    return {"project": project, "spec_sha256": after, "changed": before != after}
