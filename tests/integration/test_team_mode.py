"""Team mode: the Feast registry on the real PostgreSQL and the online store on the real Redis.

Both servers run on loopback here and on CI's machine. Each test gets its own PostgreSQL database
and an empty Redis database (13), so runs do not see each other's objects.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gristmill import pipeline
from gristmill.spec import parse_spec

pytestmark = pytest.mark.integration

POSTGRES = os.environ.get("GRISTMILL_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/postgres")
REDIS = os.environ.get("GRISTMILL_TEST_REDIS", "redis://127.0.0.1:6379/13")
SPEC = {
    "project": "team",
    "sources": [{"path": "unused"}],
    "entity": {"name": "user", "key": "user_id"},
    "features": [{"table": "events", "timestamp": "ts", "kind": "events", "columns": ["amount"]},
                 {"table": "profile", "timestamp": "updated"}],
    "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
}


@pytest.fixture
def team_workspace(workspace):
    import psycopg
    import redis

    database = f"gristmill_it_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True)
        cache = redis.Redis.from_url(REDIS)
        cache.ping()
    except Exception as exc:  # the servers are part of this machine: say how to start them
        pytest.fail(f"team-mode tests need PostgreSQL at {POSTGRES} and Redis at {REDIS} ({exc}); "
                    "start them as the machine notes say (pg_ctlcluster ... start, redis-server ...)")
    admin.execute(f'CREATE DATABASE "{database}"')
    cache.flushdb()
    registry = POSTGRES.rsplit("/", 1)[0] + f"/{database}"
    (workspace.root / "gristmill.yaml").write_text(
        f"feature_store:\n  registry: {registry}\n  online_store: {REDIS}\n")
    try:
        yield workspace, database, cache
    finally:
        cache.flushdb()
        admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        admin.close()


def test_features_train_set_and_online_reads_on_the_team_servers(team_workspace, add_tables):
    import psycopg

    ws, database, cache = team_workspace
    ts = pd.to_datetime
    add_tables(ws, "team", {
        "events": pd.DataFrame({"user_id": ["u1", "u1", "u2"], "amount": [10.0, 20.0, 5.0],
                                "ts": ts(["2024-01-01", "2024-01-10", "2024-01-03"])}),
        "profile": pd.DataFrame({"user_id": ["u1", "u2"], "plan": ["gold", "basic"],
                                 "updated": ts(["2024-01-01", "2024-01-01"])}),
        "labels": pd.DataFrame({"user_id": ["u1", "u1", "u2"], "y": [0, 1, 1],
                                "as_of": ts(["2024-01-05", "2024-01-15", "2024-01-15"])}),
    })
    spec = parse_spec(SPEC, "team.yaml")
    store_yaml = (ws.feature_repo / "feature_store.yaml")
    pipeline.features_apply(ws, spec)
    assert "postgresql+psycopg://" in store_yaml.read_text() and "GristmillRedisOnlineStore" in store_yaml.read_text()

    _, path = pipeline.features_dataset(ws, spec)
    frame = pd.read_parquet(path).sort_values(["user_id", "event_timestamp"])
    assert frame["events__amount_sum"].tolist() == [10.0, 30.0, 5.0]  # as of each label's time

    pipeline.features_materialize(ws, spec)
    assert cache.dbsize() > 0
    from gristmill.features.store import open_store

    store = open_store(ws)
    now = pd.Timestamp("2024-01-20", tz="UTC").timestamp()  # request time of the on-demand views
    online = store.get_online_features(features=store.get_feature_service("team"),
                                       entity_rows=[{"user_id": "u1", "request_time": now},
                                                    {"user_id": "nobody", "request_time": now}]).to_dict()
    assert online["events__amount_sum"] == [30.0, None] and online["profile__plan"] == ["gold", None]
    assert online["events__days_since_last"] == [10.0, None]

    with psycopg.connect(POSTGRES.rsplit("/", 1)[0] + f"/{database}") as con:
        names = {r[0] for r in con.execute("SELECT feature_view_name FROM feature_views")}
    assert names == {"team__events", "team__profile"}

    feast = Path(sys.executable).parent / "feast"
    listed = subprocess.run([str(feast), "feature-views", "list"], cwd=ws.feature_repo,
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "team__events" in listed.stdout


def test_a_bad_server_url_is_one_line(workspace, tmp_path):
    (workspace.root / "gristmill.yaml").write_text("feature_store:\n  registry: mysql://x/y\n")
    out = subprocess.run([sys.executable, "-m", "gristmill", "features", "list"], capture_output=True,
                         text=True)
    assert out.returncode == 1
    assert out.stderr.strip() == ("error: gristmill.yaml: feature_store.registry: 'mysql://x/y' is not "
                                  "a postgresql:// URL")
