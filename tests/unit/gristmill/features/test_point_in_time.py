"""Hand-made events prove the training set never sees a value stamped after a label's as-of time."""

import pandas as pd
import pytest

from gristmill import pipeline
from gristmill.spec import parse_spec

SPEC = {
    "project": "pit",
    "sources": [{"path": "unused"}],
    "entity": {"name": "user", "key": "user_id"},
    "features": [
        {"table": "events", "timestamp": "ts", "kind": "events", "columns": ["amount"]},
        {"table": "profile", "timestamp": "updated", "ttl_days": 3},
    ],
    "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
}


@pytest.fixture
def built(workspace, add_tables):
    ts = pd.to_datetime
    add_tables(workspace, "pit", {
        "events": pd.DataFrame({
            "user_id": ["u1", "u1", "u1", "u2"],
            "ts": ts(["2024-01-01", "2024-01-10", "2024-01-20", "2024-01-03"]),
            "amount": [10.0, 20.0, 100.0, 5.0],
        }),
        "profile": pd.DataFrame({
            "user_id": ["u1", "u2"],
            "updated": ts(["2024-01-01", "2024-01-01"]),
            "plan": ["gold", "basic"],
        }),
        "labels": pd.DataFrame({
            "user_id": ["u1", "u1", "u1", "u2"],
            "as_of": ts(["2023-12-31", "2024-01-02", "2024-01-15", "2024-01-15"]),
            "y": [0, 1, 0, 1],
        }),
    })
    spec = parse_spec(SPEC, "pit.yaml")
    pipeline.features_apply(workspace, spec)
    _, path = pipeline.features_dataset(workspace, spec)
    return spec, pd.read_parquet(path)


def _row(frame, user, as_of):
    match = frame[(frame.user_id == user) & (frame.event_timestamp == pd.Timestamp(as_of, tz="UTC"))]
    assert len(match) == 1
    return match.iloc[0]


def test_running_aggregates_stop_at_the_as_of_time(built):
    _, frame = built
    assert len(frame) == 4
    early = _row(frame, "u1", "2024-01-02")
    assert early["events__count"] == 1 and early["events__amount_sum"] == 10.0
    mid = _row(frame, "u1", "2024-01-15")
    assert mid["events__count"] == 2 and mid["events__amount_sum"] == 30.0  # the 100 on 01-20 is later
    assert mid["events__amount_mean"] == 15.0
    before_any = _row(frame, "u1", "2023-12-31")
    assert pd.isna(before_any["events__count"])


def test_ttl_expires_stale_values(built):
    _, frame = built
    assert _row(frame, "u1", "2024-01-02")["profile__plan"] == "gold"  # 1 day old: valid
    assert pd.isna(_row(frame, "u1", "2024-01-15")["profile__plan"])  # 14 days old, ttl 3 days


def test_online_store_serves_latest_values(built, workspace):
    spec, _ = built
    pipeline.features_materialize(workspace, spec)
    from gristmill.features.store import open_store

    store = open_store(workspace)
    now = pd.Timestamp("2024-01-22", tz="UTC").timestamp()  # the request time the on-demand views need
    online = store.get_online_features(features=store.get_feature_service("pit"),
                                       entity_rows=[{"user_id": "u1", "request_time": now},
                                                    {"user_id": "nobody", "request_time": now}]).to_dict()
    assert online["events__count"] == [3, None]
    assert online["events__amount_sum"] == [130.0, None]
    assert online["events__days_since_last"] == [2.0, None]  # last event on 01-20


def test_generated_definitions_are_scoped_and_applied_by_the_feast_cli(built, workspace):
    import subprocess
    import sys
    from pathlib import Path

    source = (workspace.feature_repo / "projects" / "pit.py").read_text()
    assert "name='pit__events'" in source and "'gristmill_project': 'pit'" in source
    feast = Path(sys.executable).parent / "feast"
    out = subprocess.run([str(feast), "feature-views", "list"], cwd=workspace.feature_repo,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "pit__events" in out.stdout and "pit__profile" in out.stdout


def test_missing_table_names_the_spec_key(workspace, add_tables):
    from gristmill.errors import DataError

    add_tables(workspace, "pit", {"labels": pd.DataFrame({"user_id": ["a"], "as_of": pd.to_datetime(["2024-01-01"]), "y": [1]})})
    spec = parse_spec(SPEC, "pit.yaml")
    with pytest.raises(DataError, match=r"features\[0\]\.table: no table 'events'"):
        pipeline.features_apply(workspace, spec)


def test_windows_are_exact_between_events_and_recency_is_on_demand(built):
    _, frame = built
    mid = _row(frame, "u1", "2024-01-15")
    assert (mid["events__count_7d"], mid["events__count_30d"]) == (1, 2)
    assert mid["events__amount_sum_7d"] == 20.0 and mid["events__amount_max_30d"] == 20.0
    assert mid["events__amount_last"] == 20.0
    assert mid["events__days_since_last"] == 5.0 and mid["events__count_7d_per_90d"] == 0.5
    # u2's only event (01-03) left the 7-day window on 01-10, between events: the expiry row says so
    late = _row(frame, "u2", "2024-01-15")
    assert (late["events__count"], late["events__count_7d"], late["events__count_30d"]) == (1, 0, 1)
    assert late["events__amount_sum_7d"] == 0.0 and pd.isna(late["events__amount_mean_7d"])
    assert late["events__days_since_last"] == 12.0
    assert not any(c.endswith("__last_event_at") or c == "request_time" for c in frame.columns)
