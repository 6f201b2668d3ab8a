"""Who acts on which workspace: passed to every operation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from gristmill.identity.principal import Principal
from gristmill.workspace import Workspace


@dataclass
class Context:
    """The workspace, the caller and the metadata database of one call.

    ``progress`` lets long work draw a progress bar (the local CLI); an operation records its
    before and after for the audit trail with :meth:`note`; on a worker, :meth:`step` reports how
    far the job is."""

    ws: Workspace
    principal: Principal
    progress: bool = False
    audit: dict[str, Any] = field(default_factory=dict)
    #: long operations (``@operation(..., job=True)``) called with this set are queued as jobs
    #: for the workers instead of run in the call (the server's requests)
    submit_jobs: bool = False
    #: the job this call runs in (on a worker), and where it reports its progress
    job_id: str | None = None
    report: Callable[[dict], None] | None = None
    #: what a queued job asks of its worker (``slots``, ``memory_mb``)
    job_options: dict[str, Any] = field(default_factory=dict)
    #: the API request this call serves (``X-Request-ID``), kept on the jobs it submits
    request_id: str | None = None

    @property
    def md(self):
        from gristmill.config import metadata

        return metadata(self.ws)

    @property
    def actor(self) -> str:
        return self.principal.actor

    @classmethod
    def local(cls, ws: Workspace | None = None, progress: bool = False) -> "Context":
        """The OS user working on the workspace directly (no server)."""
        return cls(ws or Workspace.resolve(), Principal.local(), progress=progress)

    def note(self, before: Any = None, after: Any = None, **more: Any) -> None:
        """What the change found and left, for its audit record."""
        self.audit.update({"before": before, "after": after, **more})

    @property
    def is_local(self) -> bool:
        return self.principal.kind == "local"

    def step(self, stage: str, message: str = "", **more: Any) -> None:
        """Report progress (a job's record on a worker; nothing in a terminal)."""
        if self.report is not None:
            self.report({"stage": stage, "message": message, **more})
