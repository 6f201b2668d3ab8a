"""Gristmill's materialize through its bulk online stores (SQLite, and Redis at 127.0.0.1:6379 db 14):
a few thousand entities equal their offline latest, nulls included, and a rerun writes only what
changed."""

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill import pipeline
from gristmill.features.online_store import GristmillRedisOnlineStore, GristmillSqliteOnlineStore
from gristmill.features.store import materialize, open_store
from gristmill.features.tables import build_feature_tables
from gristmill.spec import parse_spec

REDIS_DB = 14  # a db no other test or bench uses (13: team mode, 12: features_bench); flushed


def _redis():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis answers at 127.0.0.1:6379")
    return client

N = 3000
SPEC = {
    "project": "bulk",
    "sources": [{"path": "unused"}],
    "entity": {"name": "user", "key": "user_id"},
    "features": [{"table": "profile", "timestamp": "updated"}],
    "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
}
FEATURES = ["profile__plan", "profile__score", "profile__visits"]


def _profile(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = [f"u{i:05d}" for i in range(N)] * 2  # two rows each: the later one is the latest
    m = len(users)
    frame = pd.DataFrame({
        "user_id": users,
        "updated": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.r_[np.zeros(N), rng.integers(1, 10**6, N)],
                                                                unit="s"),
        "plan": rng.choice(["gold", "basic", "é-plan"], m).astype(object),
        "score": rng.normal(size=m),
        "visits": pd.array(rng.integers(0, 10**12, m), dtype="Int64"),
    })
    for col in ("plan", "score", "visits"):
        frame.loc[rng.random(m) < 0.1, col] = None
    return frame


def _tables(profile: pd.DataFrame) -> dict:
    users = sorted(set(profile.user_id))
    return {"profile": profile, "labels": pd.DataFrame({"user_id": users, "as_of": pd.Timestamp("2024-03-01"),
                                                        "y": [i % 2 for i in range(len(users))]})}


def _offline_latest(profile: pd.DataFrame, users: list[str]) -> dict:
    latest = profile.sort_values("updated").groupby("user_id").tail(1).set_index("user_id").loc[users]
    return {"profile__plan": latest["plan"].tolist(), "profile__score": latest["score"].tolist(),
            "profile__visits": latest["visits"].tolist()}


def _online(ws, users: list[str]) -> dict:
    got = open_store(ws).get_online_features(features=[f"bulk__profile:{f}" for f in FEATURES],
                                             entity_rows=[{"user_id": u} for u in users]).to_dict()
    return {f: got[f] for f in FEATURES}


def _same(online: dict, offline: dict) -> None:
    for f in FEATURES:
        for got, want in zip(online[f], offline[f]):
            if want is None or want is pd.NA or (isinstance(want, float) and np.isnan(want)):
                assert got is None, f
            else:
                assert got == want, f


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_bulk_materialize_equals_offline_latest_and_rewrites_only_what_changed(kind, workspace, add_tables,
                                                                                monkeypatch):
    if kind == "redis":
        client = _redis()
        client.flushdb()
        monkeypatch.setenv("GRISTMILL_ONLINE_STORE", f"redis://127.0.0.1:6379/{REDIS_DB}")
    profile = _profile(seed=11)
    add_tables(workspace, "bulk", _tables(profile))
    spec = parse_spec(SPEC, "bulk.yaml")
    pipeline.features_apply(workspace, spec)
    store = open_store(workspace)
    expected = GristmillRedisOnlineStore if kind == "redis" else GristmillSqliteOnlineStore
    assert type(store._get_provider().online_store) is expected

    end = datetime(2024, 6, 1, tzinfo=timezone.utc)
    first = materialize(workspace, "bulk", end=end)
    assert first["written"] == {"bulk__profile": N}
    sample = [f"u{i:05d}" for i in range(0, N, 11)]
    _same(_online(workspace, sample), _offline_latest(profile, sample))

    changed = [f"u{i:05d}" for i in range(5, 205, 8)]  # 25 users get a newer row
    newer = profile[profile.user_id.isin(changed)].groupby("user_id").tail(1).assign(
        updated=pd.Timestamp("2024-02-01"), score=123.5, plan=None, visits=pd.array([7] * len(changed), dtype="Int64"))
    profile = pd.concat([profile, newer], ignore_index=True)
    add_tables(workspace, "bulk", _tables(profile))
    build_feature_tables(workspace, spec)
    again = materialize(workspace, "bulk", end=end)
    assert again["written"] == {"bulk__profile": len(changed)}
    _same(_online(workspace, changed + sample), _offline_latest(profile, changed + sample))
    assert _online(workspace, changed[:1]) == {"profile__plan": [None], "profile__score": [123.5],
                                               "profile__visits": [7]}
    if kind == "redis":
        client.flushdb()


def test_a_digest_state_of_an_older_kind_makes_every_entity_be_written_once_more(workspace, add_tables):
    """A state file whose digests are not this code's 64-bit hashes (the md5 text of earlier
    releases) is not compared with: every entity is written, then reruns write none."""
    profile = _profile(seed=12)
    add_tables(workspace, "bulk", _tables(profile))
    pipeline.features_apply(workspace, parse_spec(SPEC, "bulk.yaml"))
    end = datetime(2024, 6, 1, tzinfo=timezone.utc)
    assert materialize(workspace, "bulk", end=end)["written"] == {"bulk__profile": N}
    state = workspace.lake("bulk") / "_features" / "_online" / "bulk__profile.parquet"
    assert pq.read_schema(state).field("__digest").type == pa.uint64()
    users = pq.read_table(state).column("__key").to_pylist()
    pq.write_table(pa.table({"user_id": users, "__digest": ["0" * 32] * len(users)}), state)  # the md5 kind
    assert materialize(workspace, "bulk", end=end)["written"] == {"bulk__profile": N}
    assert materialize(workspace, "bulk", end=end)["written"] == {"bulk__profile": 0}
