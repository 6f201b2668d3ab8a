"""The online store equals the offline latest after every materialize (issue 16): rows ingested
later with older timestamps reach it, and an emptied store is refilled."""

import sqlite3
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from gristmill import pipeline
from gristmill.features.store import materialize, open_store
from gristmill.features.tables import build_feature_tables
from gristmill.spec import parse_spec

SPEC = {
    "project": "mat",
    "sources": [{"path": "unused"}],
    "entity": {"name": "user", "key": "user_id"},
    "features": [
        {"table": "events", "timestamp": "ts", "kind": "events", "columns": ["amount"], "windows": [7]},
        {"table": "profile", "timestamp": "updated"},
    ],
    "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
}
T = pd.to_datetime


def _tables(events, profile):
    users = sorted(set(events.user_id) | set(profile.user_id))
    return {"events": events, "profile": profile,
            "labels": pd.DataFrame({"user_id": users, "as_of": T(["2024-01-15"] * len(users)),
                                    "y": [i % 2 for i in range(len(users))]})}


def _online(ws, view: str, features: list[str], users: list[str]) -> dict:
    store = open_store(ws)
    got = store.get_online_features(features=[f"{view}:{f}" for f in features],
                                    entity_rows=[{"user_id": u} for u in users]).to_dict()
    return {f: got[f] for f in features}


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc)


def _wipe_online(ws, one_entity: bool = False) -> None:
    with sqlite3.connect(ws.feast_dir / "online.db") as db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                  "AND name LIKE '%\\_\\_packed' ESCAPE '\\'").fetchall():
            where = f' WHERE entity_key = (SELECT MIN(entity_key) FROM "{name}")' if one_entity else ""
            db.execute(f'DELETE FROM "{name}"{where}')


def test_late_rows_with_old_timestamps_reach_the_online_store_and_a_wiped_store_is_refilled(
        workspace, add_tables):
    events = pd.DataFrame({"user_id": ["u1", "u2"], "ts": T(["2024-01-01", "2024-01-03"]),
                           "amount": [10.0, 5.0]})
    profile = pd.DataFrame({"user_id": ["u1", "u2"], "updated": T(["2024-01-01", "2024-01-01"]),
                            "plan": ["gold", "basic"]})
    add_tables(workspace, "mat", _tables(events, profile))
    spec = parse_spec(SPEC, "mat.yaml")
    pipeline.features_apply(workspace, spec)
    first = materialize(workspace, "mat", end=_at("2024-02-01"))
    assert first["written"] == {"mat__events": 2, "mat__profile": 2}
    assert _online(workspace, "mat__profile", ["profile__plan"], ["u1", "u2"]) == {
        "profile__plan": ["gold", "basic"]}

    # ingested later, stamped before the previous end (2024-02-01): a plan change and a late event
    events = pd.concat([events, pd.DataFrame({"user_id": ["u2"], "ts": T(["2024-01-02"]), "amount": [7.0]})])
    profile = pd.concat([profile, pd.DataFrame({"user_id": ["u1"], "updated": T(["2024-01-05"]),
                                                "plan": ["platinum"]})])
    add_tables(workspace, "mat", _tables(events, profile))
    build_feature_tables(workspace, spec)
    again = materialize(workspace, "mat", end=_at("2024-02-02"))
    assert again["written"] == {"mat__events": 1, "mat__profile": 1}  # only what changed
    assert _online(workspace, "mat__profile", ["profile__plan"], ["u1", "u2"]) == {
        "profile__plan": ["platinum", "basic"]}
    assert _online(workspace, "mat__events", ["events__count", "events__amount_sum"], ["u1", "u2"]) == {
        "events__count": [1, 2], "events__amount_sum": [10.0, 12.0]}

    unchanged = materialize(workspace, "mat", end=_at("2024-02-02"))
    assert unchanged["written"] == {"mat__events": 0, "mat__profile": 0}

    _wipe_online(workspace, one_entity=True)  # a partly lost store: one entity of each view
    patched = materialize(workspace, "mat", end=_at("2024-02-02"))
    assert patched["written"] == {"mat__events": 1, "mat__profile": 1}

    _wipe_online(workspace)
    refilled = materialize(workspace, "mat", end=_at("2024-02-02"))
    assert refilled["written"] == {"mat__events": 2, "mat__profile": 2}
    assert _online(workspace, "mat__profile", ["profile__plan"], ["u1", "u2"]) == {
        "profile__plan": ["platinum", "basic"]}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_online_equals_offline_latest_after_random_late_batches(seed, workspace, add_tables):
    """Batches of rows at random (often older) times for random users, some correcting a user's
    value at an existing timestamp; after each, every user's online value is its offline latest."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(12)]
    days = pd.date_range("2024-01-01", periods=30, freq="D")

    def batch(n, step=0):  # every row written at its own time, so the later-written row is defined
        return pd.DataFrame({"user_id": rng.choice(users, n), "updated": rng.choice(days, n),
                             "score": rng.normal(size=n).round(3),
                             "written": pd.Timestamp("2024-03-01") + pd.Timedelta(days=step)
                             + pd.to_timedelta(np.arange(n), unit="s")})

    spec_dict = {**SPEC, "features": [{"table": "profile", "timestamp": "updated", "created": "written"}]}
    spec = parse_spec(spec_dict, "mat.yaml")
    profile = batch(10)
    events = pd.DataFrame({"user_id": users[:1], "ts": T(["2024-01-01"]), "amount": [1.0]})
    add_tables(workspace, "mat", _tables(events, profile))
    pipeline.features_apply(workspace, spec)
    for step in range(4):
        if step:
            more = batch(int(rng.integers(1, 8)), step)
            if step == 2:  # a correction: same user and time as an existing row, written later
                more = pd.concat([more, profile.iloc[[0]].assign(
                    score=99.0, written=more["written"].max() + pd.Timedelta(seconds=1))])
            profile = pd.concat([profile, more], ignore_index=True)
            add_tables(workspace, "mat", _tables(events, profile))
            build_feature_tables(workspace, spec)
        if step == 3:
            _wipe_online(workspace)
        materialize(workspace, "mat", end=_at("2024-02-15"))
        latest = (profile.sort_values(["updated", "written"]).groupby("user_id").tail(1)
                  .set_index("user_id")["score"])
        want = [latest.get(u) for u in users]
        got = _online(workspace, "mat__profile", ["profile__score"], users)["profile__score"]
        assert got == [None if w is None else pytest.approx(w) for w in want], step
