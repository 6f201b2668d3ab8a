"""The authenticated caller of an action."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from gristmill.identity.roles import Role


@dataclass(frozen=True)
class Principal:
    """Who acts: a user (through a user token), a project-scoped token, or the local OS user.

    ``kind`` is ``"user"`` (a user token: the user's own roles), ``"project-token"`` (only
    ``scope_role`` on ``scope_project``, never more than its user has) or ``"local"`` (the OS user
    who owns the workspace folder, working on it directly without a server: the files are theirs,
    so they may do everything; the audit trail records them as ``local:<name>``).
    """

    name: str
    kind: str = "user"
    is_admin: bool = False
    token_id: str | None = None
    scope_project: str | None = None
    scope_role: Role | None = None

    @property
    def actor(self) -> str:
        """The name the audit trail and the promotion history record."""
        return f"local:{self.name}" if self.kind == "local" else self.name

    @classmethod
    def local(cls) -> "Principal":
        """The OS user running this process, by uid (never the USER environment variable)."""
        import os
        import pwd

        try:
            name = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            name = f"uid{os.getuid()}"
        return cls(name=name, kind="local", is_admin=True)


#: The principal of the operation running in this context (set by ``services.invoke``); records
#: that name who acted (the promotion history) read it instead of any environment variable.
ACTING: ContextVar[Principal | None] = ContextVar("gristmill_acting", default=None)


def acting_actor() -> str:
    """Who is acting now: the invoking principal, else the local OS user (by uid)."""
    principal = ACTING.get()
    return (principal or Principal.local()).actor
