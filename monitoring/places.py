"""Where monitoring keeps its files in the workspace, and the file locks that keep runs apart."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gristmill.errors import GristmillError

if TYPE_CHECKING:
    from gristmill.workspace import Workspace


class JobBusy(GristmillError):
    """The same job is already running (in this or another process)."""


def monitoring_dir(ws: Workspace) -> Path:
    return ws.root / "monitoring"


def evidently_dir(ws: Workspace) -> Path:
    return monitoring_dir(ws) / "evidently"


@contextmanager
def lock(path: Path, busy_message: str | None = None):
    """An exclusive ``flock`` on ``path``; :class:`JobBusy` if taken and ``busy_message`` is set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        flags = fcntl.LOCK_EX | (fcntl.LOCK_NB if busy_message else 0)
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            raise JobBusy(busy_message or "busy") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
