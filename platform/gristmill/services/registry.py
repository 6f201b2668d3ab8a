"""Operations: the registry the CLI and the HTTP API are both built from, and :func:`invoke`."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from gristmill.errors import GristmillError
from gristmill.identity.roles import Action
from gristmill.services.context import Context

OPERATIONS: dict[str, "Operation"] = {}
MODULES = ("identity_ops", "project_ops", "data_ops", "feature_ops", "model_ops", "serving_ops",
           "monitor_ops", "audit_ops", "job_ops", "new_ops")


@dataclass(frozen=True)
class Operation:
    """One action. ``action`` is what :func:`~gristmill.identity.policy.authorize` is asked before
    it runs (None: the function checks for itself, e.g. reads that filter by what the caller may
    see); ``changes`` marks it for the audit trail; ``creates_project`` lets any user with a user
    token create the project it names, as its owner; ``upload`` takes files (multipart)."""

    name: str
    method: str
    path: str
    fn: Callable[..., Any]
    action: Action | None
    changes: bool = False
    creates_project: bool = False
    upload: bool = False
    open: bool = False   # no authentication (password login)
    job: bool = False

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.fn) or self.name).split("\n\n")[0]

    @property
    def params(self) -> dict[str, inspect.Parameter]:
        """The call's parameters (not ``ctx``)."""
        return {n: p for n, p in inspect.signature(self.fn).parameters.items() if n != "ctx"}

    @property
    def types(self) -> dict[str, Any]:
        """The parameters' annotations, resolved (the modules use postponed annotations)."""
        import typing

        return typing.get_type_hints(self.fn)

    @property
    def path_params(self) -> list[str]:
        import string

        return [f for _, f, _, _ in string.Formatter().parse(self.path) if f]


def operation(name: str, method: str, path: str, action: Action | None, *, changes: bool = False,
              creates_project: bool = False, upload: bool = False, open: bool = False, job: bool = False):
    """Register the decorated function as operation ``name`` (a second one of that name is a bug)."""

    def add(fn):
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name!r} is defined twice")
        OPERATIONS[name] = Operation(name, method, path, fn, action, changes, creates_project, upload, open,
                                     job)
        return fn

    return add


_LOADED: list[bool] = []


def load_all() -> dict[str, Operation]:
    """Import every operation module (each registers its operations), once per process."""
    if not _LOADED:
        import importlib

        for module in MODULES:
            importlib.import_module(f"gristmill.services.{module}")
        _LOADED.append(True)
    return OPERATIONS


def get(name: str) -> Operation:
    load_all()
    if name not in OPERATIONS:
        raise GristmillError(f"no operation {name!r}; known: {', '.join(sorted(OPERATIONS))}")
    return OPERATIONS[name]


def _safe(params: dict) -> dict:
    """Parameters as the audit trail keeps them: never a password, files by name."""
    out = {}
    for key, value in params.items():
        if "password" in key:
            out[key] = "***" if value else None
        elif key == "files":
            out[key] = [name for name, _ in value or []]
        else:
            out[key] = value
    return out


def invoke(ctx: Context, name: str, /, **params: Any) -> Any:
    """Run operation ``name`` as ``ctx.principal``: the policy check, the call, the audit record."""
    from gristmill.audit import trail
    from gristmill.identity import store
    from gristmill.identity.policy import authorize

    op = get(name)
    project = params.get("project")
    if project is not None:
        from gristmill.workspace import check_project_name

        check_project_name(project)
    from gristmill.identity.principal import ACTING

    ctx.audit = {}
    md = ctx.md
    acting = ACTING.set(ctx.principal)
    try:
        if (op.creates_project and project and store.owner_of(md, project) is None
                and project not in ctx.ws.projects()):  # a new name; an unowned old one is the admins'
            authorize(md, ctx.principal, Action.create_project)
            if store.claim_project(md, project, ctx.principal.name):
                trail.append(md, ctx.actor, "project.create", project, {"owner": ctx.principal.name})
        if op.action is not None:
            authorize(md, ctx.principal, op.action, project)
        if op.job and ctx.submit_jobs:
            from gristmill.services.job_ops import queue

            job = queue(ctx, op, params, **ctx.job_options)
            trail.append(md, ctx.actor, op.name, project, {"params": _safe(params), "job": job["id"]},
                         result="queued")
            return {"job": job, "queued": True}
        result = op.fn(ctx, **params)
    except GristmillError as exc:
        if op.changes:
            from gristmill.errors import Forbidden, NoAccess, Unauthenticated

            kind = "denied" if isinstance(exc, (Forbidden, NoAccess, Unauthenticated)) else "failed"
            trail.append(md, ctx.actor, op.name, project,
                         {"params": _safe(params), "error": str(exc), **ctx.audit}, result=kind)
        raise
    except Exception as exc:
        if op.changes:
            trail.append(md, ctx.actor, op.name, project,
                         {"params": _safe(params), "error": f"{type(exc).__name__}: {exc}"[:500],
                          **ctx.audit}, result="failed")
        raise
    finally:
        ACTING.reset(acting)
    if op.changes:
        trail.append(md, ctx.actor, op.name, project, {"params": _safe(params), **ctx.audit})
    return result
