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


@operation("projects.delete", "POST", "/projects/{project}/delete", Action.delete, changes=True)
def delete(ctx: Context, project: str, confirm: str) -> dict:
    """Delete the project (owners and admins; ``confirm`` repeats its name): its feature views,
    schedules, registered model and experiment, DuckDB schema, lake, training sets, reports,
    uploads, prediction log, journals, bento and grants. The audit trail, lineage and monitoring
    history keep their records of it."""
    import shutil

    from gristmill.features.repo import GENERATED_DIR
    from gristmill.serving.prediction_log import log_folder
    from gristmill.catalog import project_lock, write_catalog
    from gristmill.sql import ident
    from gristmill.training.registry import history_path

    if confirm != project:
        raise GristmillError(f"deleting {project!r} cannot be undone: repeat its name to confirm "
                             f"(gristmill projects delete {project} --confirm {project})")
    ws, removed = ctx.ws, []
    if (ws.feature_repo / GENERATED_DIR / f"{project}.py").is_file():
        from gristmill.features.store import remove_definitions

        views = remove_definitions(ws, project)  # refused while another project reuses one
        removed.append(f"feature views: {', '.join(views) or 'none'}")
    from monitoring import scheduler

    for job in scheduler.list_scheduled(ws.root):
        if job["project"] == project:
            scheduler.unschedule(ws.root, project, job["job"])
            removed.append(f"schedule {job['id']}")
    removed += _delete_model(ws, project)
    if ws.catalog.exists():
        with project_lock(ws.lake(project), project):  # not while an ingestion of it runs
            write_catalog(ws.catalog, [f"DROP SCHEMA IF EXISTS {ident(project)} CASCADE"])
        removed.append(f"DuckDB schema {project}")
    from monitoring.jobs import jobs_dir

    for path in (ws.lake(project), ws.project_dir(project), ws.datasets(project), ws.reports(project),
                 ws.uploads(project), log_folder(ws.root, project), history_path(ws, project).parent,
                 ws.bento_dir(project), jobs_dir() / project, ws.optuna_journal(project)):
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(str(path))
        elif path.exists():
            path.unlink()
            removed.append(str(path))
    store.forget_project(ctx.md, project)
    kept = ["audit trail", "lineage", "monitoring history"]
    ctx.note(before={"project": project}, after=None, removed=removed)
    return {"project": project, "removed": removed, "kept": kept}


def _delete_model(ws, project: str) -> list[str]:
    """The registered model and the MLflow experiment (MLflow keeps a deleted experiment restorable
    until `mlflow gc`)."""
    from mlflow.exceptions import MlflowException

    from gristmill.training.train import configure_mlflow, experiment_name, model_name

    from gristmill.config import mlflow_client, mlflow_in_use

    if not mlflow_in_use(ws):
        return []
    configure_mlflow(ws)
    client, removed = mlflow_client(ws), []
    try:
        client.delete_registered_model(model_name(project))
        removed.append(f"registered model {model_name(project)}")
    except MlflowException:
        pass
    found = client.get_experiment_by_name(experiment_name(project))
    if found is not None:
        client.delete_experiment(found.experiment_id)
        removed.append(f"MLflow experiment {experiment_name(project)}")
    return removed
