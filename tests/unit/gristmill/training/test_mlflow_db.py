"""A new workspace's MLflow database is a copy of a migrated template: same schema as MLflow's own
migrations, this workspace's default experiment, nothing overwritten, safe when processes race."""

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from gristmill.training import mlflow_db


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "gristmill"


def _schema(path) -> dict:
    """Each table's definition as a set of lines: MLflow's own migrations write a table's
    constraints in an order that changes from one process to the next (hash seeds)."""
    with sqlite3.connect(path) as conn:
        tables = {name: sorted(line.strip().rstrip(",") for line in sql.splitlines())
                  for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table'")}
        tables["alembic_version"] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return tables


def test_the_copy_has_the_schema_mlflow_itself_migrates_to(cache, tmp_path):
    import sqlalchemy as sa
    from mlflow.store.db.utils import _initialize_tables

    target = tmp_path / "ws" / "mlflow.db"
    target.parent.mkdir()
    assert mlflow_db.seed(target) is True
    assert mlflow_db.template_path().parent == cache and mlflow_db.template_path().is_file()
    assert target.stat().st_mode & 0o777 == 0o600 and cache.stat().st_mode & 0o777 == 0o700

    reference = tmp_path / "reference.db"
    engine = sa.create_engine(f"sqlite:///{reference}")
    _initialize_tables(engine)
    engine.dispose()
    assert _schema(target) == _schema(reference)


def test_mlflow_opens_the_copy_with_this_workspaces_default_experiment_and_it_is_not_seeded_twice(cache, workspace):
    from gristmill.config import mlflow_client
    from gristmill.training.train import configure_mlflow

    experiment = configure_mlflow(workspace, "shop")
    database = workspace.mlflow_dir / "mlflow.db"
    assert database.is_file() and mlflow_db.template_path().is_file()
    client = mlflow_client(workspace)
    assert client.get_experiment(experiment).name.endswith("shop")
    default = client.get_experiment("0")
    assert default.name == "Default"
    assert mlflow_db.seed(database) is False   # an existing database is never replaced
    assert client.get_experiment(experiment).name.endswith("shop")


def _race(target: str, barrier) -> None:
    barrier.wait()
    mlflow_db.seed(Path(target))


def test_processes_racing_to_seed_leave_one_whole_database(cache, tmp_path):
    target = tmp_path / "mlflow.db"
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_race, args=(str(target), barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert "experiments" in _schema(target)
    assert sorted(os.listdir(tmp_path)) == ["cache", "mlflow.db"]   # no partial files left behind
    assert [f for f in os.listdir(cache) if not f.endswith(".db")] == []


def test_an_unwritable_cache_leaves_creation_to_mlflow(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    target = tmp_path / "mlflow.db"
    assert mlflow_db.seed(target) is False and not target.exists()
