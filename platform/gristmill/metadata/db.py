"""The metadata database: its tables (SQLAlchemy Core) and one cached engine per URL."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

meta = sa.MetaData()

users = sa.Table(
    "gm_users", meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("password_hash", sa.String(256), nullable=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
)

tokens = sa.Table(
    "gm_tokens", meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_name", sa.String(64), sa.ForeignKey("gm_users.name"), nullable=False, index=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("project", sa.String(64), nullable=True),   # a project-scoped token, else None
    sa.Column("role", sa.String(16), nullable=True),      # its role on that project
    sa.Column("label", sa.String(128), nullable=False, default=""),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("expires_at", sa.String(32), nullable=True),
    sa.Column("revoked_at", sa.String(32), nullable=True),
)

projects = sa.Table(
    "gm_projects", meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

grants = sa.Table(
    "gm_grants", meta,
    sa.Column("project", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("granted_by", sa.String(80), nullable=False),
    sa.Column("granted_at", sa.String(32), nullable=False),
)

audit = sa.Table(
    "gm_audit", meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("project", sa.String(64), nullable=True, index=True),
    sa.Column("detail", sa.Text, nullable=False),     # JSON: what (parameters), before, after
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(   # the chain's last record: a removed tail shows as a mismatch
    "gm_audit_head", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

lineage = sa.Table(
    "gm_lineage", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(64), nullable=False, index=True),
    sa.Column("src", sa.String(400), nullable=False, index=True),   # "kind:id"
    sa.Column("dst", sa.String(400), nullable=False, index=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.UniqueConstraint("project", "src", "dst", name="gm_lineage_edge"),
)


jobs = sa.Table(   # the job queue's record of every job (Celery carries only its id)
    "gm_jobs", meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),          # the operation it runs
    sa.Column("project", sa.String(64), nullable=True, index=True),
    sa.Column("user_name", sa.String(64), nullable=False, index=True),
    sa.Column("principal", sa.Text, nullable=False),            # JSON: who submitted, with its scope
    sa.Column("params", sa.Text, nullable=False),               # JSON
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("slots", sa.Integer, nullable=False, default=1),
    sa.Column("memory_mb", sa.Integer, nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False, default=3),
    sa.Column("not_before", sa.Float, nullable=False, default=0.0),  # epoch seconds (retry backoff)
    sa.Column("worker", sa.String(128), nullable=True),
    sa.Column("progress", sa.Text, nullable=True),              # JSON
    sa.Column("result", sa.Text, nullable=True),                # JSON
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("dispatched_at", sa.Float, nullable=True),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("parent", sa.String(32), nullable=True, index=True),
    sa.Column("request_id", sa.String(64), nullable=True),     # the API request that submitted it
    sa.Column("waiting_for", sa.String(300), nullable=True),   # why it is still queued (last pass)
)

job_logs = sa.Table(
    "gm_job_logs", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("level", sa.String(12), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)

workers = sa.Table(   # live workers: their slots and their last heartbeat
    "gm_workers", meta,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(128), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("memory_mb", sa.Integer, nullable=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("stopped", sa.Boolean, nullable=False, default=False),
    sa.Column("metrics_url", sa.String(200), nullable=True),
)


@dataclass(frozen=True)
class Metadata:
    """An engine on the metadata database; ``team`` when it is PostgreSQL."""

    engine: sa.Engine
    url: str

    @property
    def team(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def write(self):
        """A write transaction: ``with md.write() as conn:``. On SQLite it takes the write lock at
        once (BEGIN IMMEDIATE, waiting up to 30 s), so a read-then-write never fails midway; reads
        (``md.engine.connect()``) stay deferred and never wait for a writer (WAL)."""
        return self.engine.execution_options(gm_write=True).begin()

    def ping(self) -> None:
        """Ask the database one trivial query (readiness probes); raises when it does not answer."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def begin_serialized(self, conn: sa.Connection) -> None:
        """Serialize the transaction on ``conn`` with every other writer of the audit chain."""
        if self.team:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(727001)"))


_engines: dict[str, Metadata] = {}
_lock = threading.Lock()


def _sqlite_engine(path: Path) -> sa.Engine:
    from gristmill.workspace import owner_only_file

    path.parent.mkdir(parents=True, exist_ok=True)
    owner_only_file(path)
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # WAL: readers never wait for the one writer
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()
        dbapi_conn.isolation_level = None  # transactions are begun explicitly (BEGIN IMMEDIATE)

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("gm_write") else "BEGIN")

    return engine


def _add_missing_columns(conn: sa.Connection) -> None:
    """Add the nullable columns a newer Gristmill declares to tables an older one made (``create_all``
    makes missing tables only): an old workspace opens without a migration step."""
    inspector = sa.inspect(conn)
    for table in meta.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


def open_metadata(url: str | None, sqlite_path: Path) -> Metadata:
    """The metadata database at ``url`` (PostgreSQL), else the SQLite file; tables made on first use."""
    key = url or f"sqlite:{sqlite_path}"
    with _lock:
        found = _engines.get(key)
        if found is not None:
            return found
        if url:
            from gristmill.config import sqlalchemy_url

            engine = sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=10, max_overflow=20)
        else:
            engine = _sqlite_engine(sqlite_path)
        with engine.execution_options(gm_write=True).begin() as conn:
            if url:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(727000)"))  # one creator at a time
            meta.create_all(conn)
            _add_missing_columns(conn)
        found = _engines[key] = Metadata(engine, key)
        return found
