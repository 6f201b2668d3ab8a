"""Deployments: the project's bento (the gateway is written by whoever starts it)."""

from __future__ import annotations

from gristmill.identity.roles import Action
from gristmill.services.context import Context
from gristmill.services.feature_ops import project_spec
from gristmill.services.registry import operation


@operation("serving.deploy", "POST", "/projects/{project}/deploy", Action.deploy, changes=True)
def deploy(ctx: Context, project: str) -> dict:
    """Write bentos/<project>/ (service.py + bentofile.yaml) for the champion (and challenger),
    both copied from the MLflow registry into BentoML's model store for ``bentoml build``."""
    from gristmill import pipeline
    from gristmill.audit import lineage
    from gristmill.serving.bento import class_name
    from gristmill.training import registry

    spec = project_spec(ctx, project)
    folder, models = pipeline.deploy(ctx.ws, spec)
    champion = registry.champion_version(ctx.ws, project)
    if champion:
        lineage.record(ctx.md, project, [(f"model:{champion}", f"deployment:{project}")], ctx.actor)
    ctx.note(before=None, after={"bento": str(folder), "champion": champion, "models": models})
    return {"project": project, "bento": str(folder), "service": f"service:{class_name(project)}",
            "port": spec.serving.port, "champion": champion, "models": models}
