"""The workspace: one folder that holds all of Gristmill's state.

Layout (every per-project path is scoped by the project's name)::

    <workspace>/
      catalog.duckdb            DuckDB catalog: one schema per project
      lake/<project>/           typed Parquet (+ JSONL) tables, schema records, feature tables
      projects/<project>/       the registered project spec
      datasets/<project>/       point-in-time training sets (versioned Parquet)
      feast/                    Feast SQL registry and SQLite online store
      mlflow/                   MLflow tracking database and artifacts
      optuna/                   Optuna journal storage, one file per project
      reports/<project>/        drift reports (HTML + JSON)
      uploads/<project>/        files uploaded to the server for ingestion
      gristmill.db              users, tokens, grants, audit trail, lineage (SQLite; PostgreSQL in team mode)
      logs/

Everything in it is owner-only: any process that resolves a workspace sets its umask to 077, so
files are created 0600 and folders 0700 whatever the caller's umask, and :meth:`Workspace.ensure`
tightens the folder itself.

The workspace defaults to ``./workspace``; ``GRISTMILL_WORKSPACE`` or ``--workspace`` moves it. The
files users read and edit live in the source tree instead: ``feature_repo/`` (Feast definitions),
``bentos/`` (services); ``GRISTMILL_FEATURE_REPO`` and ``GRISTMILL_BENTOS`` move those.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from gristmill.errors import InvalidName, ProjectNotFound

PROJECT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PROJECT_RULE = "use 1-63 lower-case letters, digits or '_', starting with a letter"


def secure_umask() -> None:
    """Owner-only files from here on (0600 files, 0700 folders), whatever umask the process had."""
    os.umask(0o077)


def owner_only_file(path: Path) -> None:
    """Create ``path`` (empty) as 0600 if it does not exist, and make it 0600 if it does."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def check_project_name(name: str) -> str:
    """Return ``name`` if it is a valid project name, else raise :class:`InvalidName`."""
    if not PROJECT_NAME.match(name or "") or "__" in name:
        raise InvalidName("project", name, PROJECT_RULE + " (no '__')")
    return name


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace and of the source-tree folders it writes to."""

    root: Path
    feature_repo: Path
    bentos: Path

    @classmethod
    def resolve(cls, root: str | Path | None = None) -> "Workspace":
        """The workspace named by ``root``, else ``$GRISTMILL_WORKSPACE``, else ``./workspace``."""
        chosen = root or os.environ.get("GRISTMILL_WORKSPACE") or "workspace"
        repo = os.environ.get("GRISTMILL_FEATURE_REPO") or "feature_repo"
        bentos = os.environ.get("GRISTMILL_BENTOS") or "bentos"
        secure_umask()
        return cls(Path(chosen).resolve(), Path(repo).resolve(), Path(bentos).resolve())

    # -- shared stores -------------------------------------------------------------------------
    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def feast_dir(self) -> Path:
        return self.root / "feast"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metadata_db(self) -> Path:
        """SQLite file of users, tokens, grants, audit and lineage (embedded default)."""
        return self.root / "gristmill.db"

    def uploads(self, project: str) -> Path:
        return self.root / "uploads" / check_project_name(project)

    # -- per project ---------------------------------------------------------------------------
    def lake(self, project: str) -> Path:
        return self.root / "lake" / check_project_name(project)

    def project_dir(self, project: str) -> Path:
        return self.root / "projects" / check_project_name(project)

    def spec_path(self, project: str) -> Path:
        return self.project_dir(project) / "project.yaml"

    def datasets(self, project: str) -> Path:
        return self.root / "datasets" / check_project_name(project)

    def reports(self, project: str) -> Path:
        return self.root / "reports" / check_project_name(project)

    def optuna_journal(self, project: str) -> Path:
        return self.root / "optuna" / f"{check_project_name(project)}.journal"

    def bento_dir(self, project: str) -> Path:
        return self.bentos / check_project_name(project)

    def projects(self) -> list[str]:
        """Projects with a registered spec or ingested tables."""
        found = set()
        if (self.root / "projects").is_dir():
            found |= {p.name for p in (self.root / "projects").iterdir() if (p / "project.yaml").is_file()}
        if (self.root / "lake").is_dir():
            found |= {p.name for p in (self.root / "lake").iterdir() if (p / "_catalog.json").is_file()}
        return sorted(found)

    def require_project(self, project: str, spec: bool = True) -> str:
        """``project`` if it is in this workspace (with a spec, unless ``spec`` is False)."""
        check_project_name(project)
        known = self.spec_path(project).is_file() or (
            not spec and (self.lake(project) / "_catalog.json").is_file())
        if not known:
            raise ProjectNotFound(project, self.projects())
        return project

    def ensure(self) -> "Workspace":
        secure_umask()
        for sub in (self.root, self.feast_dir, self.mlflow_dir, self.logs):
            sub.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        return self
