"""Workspace configuration: embedded stores by default, team servers when configured.

With no configuration every store lives in the workspace folder (Feast SQL registry and online store
on SQLite). Team mode points the Feast registry at PostgreSQL and the online store at Redis; it is
configuration, not code:

``<workspace>/gristmill.yaml``::

    feature_store:
      registry: postgresql://gristmill@db.internal:5432/feast   # shared Feast registry
      online_store: redis://cache.internal:6379/0                # shared online store

    server:
      metadata: postgresql://gristmill@db.internal:5432/gristmill  # users, tokens, audit, lineage

    mlflow:
      tracking: postgresql://gristmill@db.internal:5432/mlflow    # runs and models (own database)
      artifacts: /shared/gristmill/mlflow-artifacts               # a folder every machine sees

    training:
      optuna: postgresql://gristmill@db.internal:5432/optuna      # studies (default: server.metadata)

or the environment: ``GRISTMILL_FEAST_REGISTRY``, ``GRISTMILL_ONLINE_STORE``,
``GRISTMILL_METADATA_URL``, ``GRISTMILL_MLFLOW_TRACKING``, ``GRISTMILL_OPTUNA_STORAGE`` and
``GRISTMILL_BROKER_URL`` (the job queue's Celery broker, see ``jobs:``; they win over the file). Every Feast object stays scoped by project (``<project>__...``), so many workspaces and
projects share one registry.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gristmill.workspace import Workspace

CONFIG_FILE = "gristmill.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _postgres_url(value: str | None) -> str | None:
    if value is not None and urlsplit(value).scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"{value!r} is not a postgresql:// URL")
    return value


class FeatureStoreConfig(_Strict):
    """Where Feast keeps its registry and its online store."""

    registry: str | None = Field(
        None, description="PostgreSQL URL of a shared Feast registry, e.g. "
        "postgresql://user@host:5432/feast (default: SQLite in the workspace).")
    online_store: str | None = Field(
        None, description="Redis URL of a shared online store, e.g. redis://host:6379/0 "
        "(default: SQLite in the workspace).")
    online_write_batch_size: int | None = Field(
        None, ge=1, description="Rows per online write while materializing (bounds memory).")

    _postgres = field_validator("registry")(classmethod(lambda cls, value: _postgres_url(value)))

    @field_validator("online_store")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss"):
            raise ValueError(f"{value!r} is not a redis:// URL")
        return value


class ServerConfig(_Strict):
    """The Gristmill API server (``gristmill server``) and the metadata it keeps."""

    metadata: str | None = Field(
        None, description="PostgreSQL URL of the metadata database (users, tokens, grants, audit "
        "trail, lineage) shared by every server process, e.g. postgresql://user@host:5432/gristmill "
        "(default: SQLite <workspace>/gristmill.db).")
    host: str = Field("127.0.0.1", description="Address the server listens on (0.0.0.0 exposes it "
                      "to the network: put TLS in front).")
    port: int = Field(8700, ge=1, le=65_535, description="Port of `gristmill server`.")
    sql_max_rows: int = Field(10_000, ge=1, description="Most rows a `gristmill sql` query returns.")
    sql_max_seconds: float = Field(30.0, gt=0, description="Longest a `gristmill sql` query may run.")
    metrics_need_token: bool = Field(False, description="Whether `/metrics` asks for an API token (any "
                                     "valid one). Off: Prometheus scrapes it like the probes; it holds "
                                     "no project or user names (docs/security.md).")

    _postgres = field_validator("metadata")(classmethod(lambda cls, value: _postgres_url(value)))


class MlflowConfig(_Strict):
    """Where MLflow keeps its runs and models (team mode: PostgreSQL and a shared folder)."""

    tracking: str | None = Field(
        None, description="PostgreSQL URL of a shared MLflow tracking and model registry store, e.g. "
        "postgresql://user@host:5432/mlflow: `mlflow server --backend-store-uri <it>` shows every "
        "project's runs. Its own database: MLflow's tables and migrations are its own "
        "(default: SQLite <workspace>/mlflow/mlflow.db).")
    artifacts: str | None = Field(
        None, description="Folder shared by every machine where run artifacts and models are written "
        "(default: <workspace>/mlflow/artifacts).")

    _postgres = field_validator("tracking")(classmethod(lambda cls, value: _postgres_url(value)))


class TrainingStoreConfig(_Strict):
    """Where the Optuna studies live."""

    optuna: str | None = Field(
        None, description="PostgreSQL URL of the Optuna storage (RDB) shared by every training worker, "
        "e.g. postgresql://user@host:5432/optuna (default: server.metadata when that is set, else one "
        "journal file per project in <workspace>/optuna).")

    _postgres = field_validator("optuna")(classmethod(lambda cls, value: _postgres_url(value)))


class JobsConfig(_Strict):
    """The job queue (``gristmill worker``): where its messages go and how jobs share the workers."""

    broker: str | None = Field(
        None, description="Celery broker URL shared by the server and every worker, e.g. "
        "redis://host:6379/1 or amqp://guest:guest@host:5672// (default: a SQLite file in the "
        "workspace, for workers on this machine).")
    per_user: int = Field(4, ge=1, description="Most jobs one user may have running at once.")
    per_project: int = Field(4, ge=1, description="Most jobs one project may have running at once.")
    max_attempts: int = Field(3, ge=1, description="Runs of a job before it fails for good (a lost "
                              "worker or a transient error starts another).")
    retry_backoff_seconds: float = Field(5.0, ge=0, description="Wait before the first retry; "
                                         "doubles with each further one.")
    heartbeat_seconds: float = Field(2.0, gt=0, description="How often a worker says it is alive.")
    lost_after_seconds: float = Field(15.0, gt=0, description="A worker silent this long is lost: "
                                      "its jobs run again elsewhere or fail.")

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        schemes = ("redis", "rediss", "amqp", "amqps", "pyamqp", "sqla+postgresql", "sqla+sqlite")
        if value is not None and urlsplit(value).scheme not in schemes:
            raise ValueError(f"{value!r} is not a broker URL ({', '.join(schemes)})")
        return value


class WorkspaceConfig(_Strict):
    """Settings of a workspace (``<workspace>/gristmill.yaml``)."""

    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    server: ServerConfig = ServerConfig()
    mlflow: MlflowConfig = MlflowConfig()
    training: TrainingStoreConfig = TrainingStoreConfig()
    jobs: JobsConfig = JobsConfig()

    @property
    def team_mode(self) -> bool:
        return bool(self.feature_store.registry or self.feature_store.online_store or self.server.metadata
                    or self.mlflow.tracking or self.training.optuna or self.jobs.broker)

    @property
    def optuna_url(self) -> str | None:
        """The shared Optuna storage, or None for the embedded journal files."""
        return self.training.optuna or self.server.metadata


def load_config(ws: Workspace) -> WorkspaceConfig:
    """The workspace's configuration: its file, then the environment on top."""
    from gristmill.spec import read_yaml, validate

    path = ws.root / CONFIG_FILE
    data = (read_yaml(path) or {}) if path.is_file() else {}
    config = validate(WorkspaceConfig, data, CONFIG_FILE, "feature_store, server, mlflow, training, jobs")
    overrides = {k: v for k, v in {"registry": os.environ.get("GRISTMILL_FEAST_REGISTRY"),
                                   "online_store": os.environ.get("GRISTMILL_ONLINE_STORE")}.items() if v}
    metadata = os.environ.get("GRISTMILL_METADATA_URL")
    tracking = os.environ.get("GRISTMILL_MLFLOW_TRACKING")
    optuna_url = os.environ.get("GRISTMILL_OPTUNA_STORAGE")
    broker = os.environ.get("GRISTMILL_BROKER_URL")
    if overrides or metadata or tracking or optuna_url or broker:
        merged = config.model_dump()
        merged["feature_store"] |= overrides
        if metadata:
            merged["server"]["metadata"] = metadata
        if tracking:
            merged["mlflow"]["tracking"] = tracking
        if optuna_url:
            merged["training"]["optuna"] = optuna_url
        if broker:
            merged["jobs"]["broker"] = broker
        config = validate(WorkspaceConfig, merged, "environment", "feature_store, server, mlflow, training, jobs")
    return config


_METADATA: dict[tuple, object] = {}


def metadata(ws: Workspace):
    """The workspace's metadata database (:mod:`gristmill.metadata`); asked on every request, so
    the configuration is read again only when its file or the environment changes."""
    from gristmill.metadata import open_metadata

    path = ws.root / CONFIG_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(ws.root), stamp, os.environ.get("GRISTMILL_METADATA_URL"))
    found = _METADATA.get(key)
    if found is None:
        found = _METADATA[key] = open_metadata(load_config(ws).server.metadata, ws.metadata_db)
    return found


def positive_int_env(name: str, default: int, unit: str) -> int:
    """Environment variable ``name`` as a whole number of ``unit`` (at least 1), else ``default``;
    a bad value is a one-line mistake."""
    from gristmill.errors import GristmillError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise GristmillError(f"{name} must be a whole number of {unit} (at least 1), not {raw!r}")
    return int(raw)


def sqlalchemy_url(url: str) -> str:
    """``postgresql://...`` with the psycopg 3 driver SQLAlchemy needs."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if "+" not in scheme else url


def redis_connection_string(url: str) -> str:
    """Feast's Redis form ``host:port,db=N[,password=...][,ssl=true]`` from a redis:// URL."""
    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    out = f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379},db={db}"
    if parts.password:
        out += f",password={unquote(parts.password)}"
    if parts.scheme == "rediss":
        out += ",ssl=true"
    return out


def mlflow_tracking_uri(ws: Workspace) -> str:
    """The MLflow tracking (and registry) store every MLflow use of ``ws`` goes to: the team's
    PostgreSQL store when ``mlflow.tracking`` is set, else SQLite in the workspace."""
    tracking = load_config(ws).mlflow.tracking
    return sqlalchemy_url(tracking) if tracking else ws.mlflow_uri


def mlflow_client(ws: Workspace):
    """An ``MlflowClient`` on ``ws``'s tracking and registry store, named explicitly: never the
    process-wide URI (``mlflow.set_tracking_uri`` and the ``MLFLOW_*_URI`` variables it sets), which
    an earlier caller in the process may have pointed at another workspace."""
    from mlflow import MlflowClient

    uri = mlflow_tracking_uri(ws)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def mlflow_artifacts_root(ws: Workspace):
    """The folder run artifacts and models are written to (``mlflow.artifacts``, else the
    workspace's ``mlflow/artifacts``)."""
    from pathlib import Path

    folder = load_config(ws).mlflow.artifacts
    return Path(folder).expanduser().resolve() if folder else ws.mlflow_dir / "artifacts"


def optuna_storage_url(ws: Workspace) -> str | None:
    """The SQLAlchemy URL of the shared Optuna storage, or None for the workspace's journal files."""
    url = load_config(ws).optuna_url
    return sqlalchemy_url(url) if url else None


def mlflow_in_use(ws: Workspace) -> bool:
    """Whether MLflow may hold anything of ``ws``: a team store is configured or the SQLite file exists."""
    return bool(load_config(ws).mlflow.tracking) or (ws.mlflow_dir / "mlflow.db").is_file()
