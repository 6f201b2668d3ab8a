"""Features: apply, training sets, materialize, suggest, list, remove."""

from __future__ import annotations

from gristmill.identity.roles import Action
from gristmill.services.context import Context
from gristmill.services.registry import operation


def project_spec(ctx: Context, project: str):
    """The registered spec; a feature table it reuses from another project needs a role there too
    (reusing a view reads that project's data)."""
    from gristmill.identity.policy import authorize
    from gristmill.spec import load_spec

    spec = load_spec(ctx.ws.spec_path(ctx.ws.require_project(project)))
    for feature in spec.features:
        if feature.project and feature.project != project:
            authorize(ctx.md, ctx.principal, Action.read, feature.project)
    return spec


def _table_versions(ctx: Context, project: str, tables: list[str]) -> dict[str, str]:
    from ingestion.catalog import load_state

    state = load_state(ctx.ws.lake(project))["tables"]
    return {t: state[t]["version"] for t in tables if t in state}


@operation("features.apply", "POST", "/projects/{project}/features/apply", Action.features, changes=True, job=True)
def apply(ctx: Context, project: str) -> dict:
    """Build feature tables, write feature_repo/projects/<project>.py and run `feast apply`."""
    from gristmill import pipeline

    result = pipeline.features_apply(ctx.ws, project_spec(ctx, project))
    ctx.note(before=None, after={"feature_views": result["feature_views"], "features": result["features"]})
    return result


@operation("features.dataset", "POST", "/projects/{project}/features/dataset", Action.features, changes=True, job=True)
def dataset(ctx: Context, project: str) -> dict:
    """Build a point-in-time correct training set from the label table."""
    from gristmill import pipeline
    from gristmill.audit import lineage

    spec = project_spec(ctx, project)
    dataset_id, path = pipeline.features_dataset(ctx.ws, spec)
    tables = [spec.label.table, *(f.table for f in spec.features if not getattr(f, "project", None))]
    edges = [(f"table:{t}@{v}", f"dataset:{dataset_id}") for t, v in _table_versions(ctx, project, tables).items()]
    lineage.record(ctx.md, project, edges, ctx.actor)
    import json

    meta = path.with_suffix(".json")
    left_out = (json.loads(meta.read_text()).get("labels_left_out") or {}) if meta.is_file() else {}
    ctx.note(before=None, after={"training_set_id": dataset_id, "labels_left_out": left_out})
    return {"id": dataset_id, "path": str(path), "labels_left_out": left_out}


@operation("features.materialize", "POST", "/projects/{project}/features/materialize", Action.features,
           changes=True, job=True)
def materialize(ctx: Context, project: str) -> dict:
    """Load the latest feature values into the online store (incremental after the first run)."""
    from gristmill import pipeline

    state = pipeline.features_materialize(ctx.ws, project_spec(ctx, project))
    ctx.note(before=None, after={"views": len(state.get("views", [])), "end": state.get("end")})
    return state


@operation("features.suggest", "GET", "/projects/{project}/features/suggest", Action.read)
def suggest(ctx: Context, project: str) -> dict:
    """Propose feature tables from the ingested tables: key, timestamp and kind of each, with why."""
    from gristmill.features.suggest import as_yaml, suggest as run

    found, skipped = run(ctx.ws, project_spec(ctx, project))
    return {"features": [s.entry for s in found], "why": {s.table: s.why for s in found},
            "left_out": skipped, "yaml": as_yaml(found, skipped)}


@operation("features.list", "GET", "/features", None)
def list_views(ctx: Context) -> dict:
    """Feature views of the projects the caller may see: the owner project and the projects using each."""
    from gristmill.features.store import feature_views
    from gristmill.identity.policy import visible_projects

    rows = feature_views(ctx.ws)
    mine = set(visible_projects(ctx.md, ctx.principal, sorted({r["project"] for r in rows})))
    return {"feature_views": [r | {"used_by": [u for u in r["used_by"] if u in mine]}
                              for r in rows if r["project"] in mine]}


@operation("features.remove", "POST", "/projects/{project}/features/remove", Action.features, changes=True)
def remove(ctx: Context, project: str) -> dict:
    """Remove a project's generated definitions and apply: its views leave the registry, every
    other project's stay. Refused while another project reuses one of its views."""
    from gristmill.features.store import remove_definitions

    removed = remove_definitions(ctx.ws, project)
    ctx.note(before={"feature_views": removed}, after={"feature_views": []})
    return {"project": project, "removed_views": removed}
