"""Gristmill's exceptions: one root, small subclasses that compose their own message.

A :class:`GristmillError` is a user-facing problem: the CLI prints ``str(error)`` as one line and
exits with status 1, never a traceback. ``http_status`` says how a serving endpoint maps it.
"""

from __future__ import annotations

SHOWN_CHARS = 64  #: at most this much of any value a user gave is echoed in a message


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``value`` as text, cut to ``limit`` characters (saying how long it was): a message never
    echoes a 20 MB id whole."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def _quoted(value: object) -> str:
    return repr(shown(value))


class GristmillError(Exception):
    """Root of every error Gristmill raises on purpose."""

    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SpecError(GristmillError):
    """A project spec is invalid; the message names the file and the key path."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class ProjectNotFound(GristmillError):
    http_status = 404

    def __init__(self, project: str, known: list[str]) -> None:
        self.project = project
        hint = f"known projects: {', '.join(sorted(known))}" if known else "no project has run yet"
        super().__init__(f"project {_quoted(project)} is not in this workspace ({hint})")


class InvalidName(GristmillError):
    def __init__(self, kind: str, name: str, rule: str) -> None:
        self.kind, self.name = kind, name
        super().__init__(f"invalid {kind} name {_quoted(name)}: {rule}")


class StageNotReady(GristmillError):
    """A stage needs the output of an earlier one that has not run yet."""

    def __init__(self, stage: str, needs: str, command: str) -> None:
        self.stage, self.needs = stage, needs
        super().__init__(f"{stage} needs {needs}: run `{command}` first")


class DataError(GristmillError):
    """The data given cannot be used as asked (missing column, empty table, ...)."""


class ModelNotFound(GristmillError):
    http_status = 404


class EntityNotFound(GristmillError):
    http_status = 404

    def __init__(self, entity: str, ids: list[str]) -> None:
        self.entity, self.ids = entity, ids
        listed = ", ".join(_quoted(i) for i in ids[:5]) + (f" ... ({len(ids):,} ids)" if len(ids) > 5 else "")
        super().__init__(f"unknown {entity} id: {listed} (no features in the online store)")


class InvalidRequest(GristmillError):
    http_status = 422


class Unauthenticated(GristmillError):
    """No credentials, or credentials that are malformed, unknown, expired or revoked."""

    http_status = 401


class Forbidden(GristmillError):
    """The caller is known but their role does not allow the action."""

    http_status = 403


class NoAccess(GristmillError):
    """The caller has no role on the project: answered like an unknown project (404), so project
    names do not leak to people outside them."""

    http_status = 404

    def __init__(self, project: str) -> None:
        self.project = project
        super().__init__(f"project {_quoted(project)} is not one of yours (ask its owner to share it: "
                         f"gristmill projects share {shown(project)} --user <you> --role viewer)")


class Conflict(GristmillError):
    http_status = 409


class NotFound(GristmillError):
    http_status = 404
