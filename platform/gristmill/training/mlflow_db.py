"""A new workspace's MLflow database, copied from a migrated template instead of migrated anew.

MLflow builds a new SQLite tracking database by running its whole chain of Alembic migrations, about
2.5 s on this machine, before the first trial of a workspace's first training can start. The
database those migrations leave is the same for every workspace of one MLflow version, so it is
built once per version, kept in the user's cache folder (``$XDG_CACHE_HOME/gristmill`` or
``~/.cache/gristmill``, owner-only), and copied. MLflow then finds its tables at their head
revision and only adds the default experiment, with this workspace's paths, as it always does.

Both the template and a workspace's copy appear atomically (written beside the target, then
hard-linked into place), so concurrent first uses never see half a file nor overwrite a database
another process made first. Anything unexpected leaves the database to MLflow's own creation.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gristmill"


def template_path() -> Path:
    from importlib.metadata import version

    return cache_dir() / f"mlflow-{version('mlflow')}.db"


def seed(database: Path) -> bool:
    """Put a migrated empty MLflow database at ``database`` unless a file is there; True if copied."""
    if database.exists():
        return False
    try:
        template = template_path()
        if not template.exists():
            _build_template(template)
        _place(template, database)
        return True
    except OSError as exc:  # a read-only cache or a full disk: MLflow migrates as it always did
        log.debug("MLflow database not seeded (%s); MLflow creates it", exc)
        return False


def _build_template(template: Path) -> None:
    import sqlalchemy as sa
    from mlflow.store.db.utils import _initialize_tables

    template.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = template.with_name(f"{template.name}.{os.getpid()}.build")
    scratch.unlink(missing_ok=True)
    engine = sa.create_engine(f"sqlite:///{scratch}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
    try:
        _place(scratch, template)
    finally:
        scratch.unlink(missing_ok=True)


def _place(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` (0600) atomically; a target made meanwhile by another process wins."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(source, partial)
        os.chmod(partial, 0o600)
        try:
            os.link(partial, target)
        except FileExistsError:
            pass
    finally:
        partial.unlink(missing_ok=True)
