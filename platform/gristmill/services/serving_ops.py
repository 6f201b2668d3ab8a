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


@operation("serving.status", "GET", "/projects/{project}/serving", Action.read)
def status(ctx: Context, project: str, timeout: float = 1.0) -> dict:
    """The project's service as it runs now: its ``/metrics`` on 127.0.0.1 (the spec's port) read
    for requests, predictions and p50/p99 latency per model version and endpoint, beside the
    spec's traffic settings (A/B share, shadow). ``reachable`` False (with ``error``) when nothing
    answers there."""
    import httpx

    from gristmill.serving.metrics import summarize

    spec = project_spec(ctx, project)
    url = f"http://127.0.0.1:{spec.serving.port}/metrics"
    out = {"project": project, "url": url, "challenger_share": spec.serving.challenger_share,
           "shadow": spec.serving.shadow, "reachable": False, "error": None, "series": []}
    try:
        reply = httpx.get(url, timeout=max(0.1, min(float(timeout), 5.0)))
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
        return out
    out["reachable"] = True
    out["series"] = summarize(reply.text, project)
    return out
