"""A date column of a snapshot table stays a date through Feast (a ``UnixTimestamp`` feature), joined
point in time like any other value, so the model can expand it (not whole-day floats)."""

import pandas as pd

from gristmill import pipeline
from gristmill.features.store import load_manifest
from gristmill.spec import parse_spec

SPEC = {"project": "dd", "sources": [{"path": "unused"}], "entity": {"name": "user", "key": "user_id"},
        "features": [{"table": "profile", "timestamp": "updated"}],
        "label": {"table": "labels", "target": "y", "timestamp": "as_of"}}


def test_a_snapshot_date_is_a_unix_timestamp_feature_joined_point_in_time(workspace, add_tables):
    ts = pd.to_datetime
    add_tables(workspace, "dd", {
        "profile": pd.DataFrame({"user_id": ["u1", "u1", "u2"],
                                 "updated": ts(["2024-01-01", "2024-02-01", "2024-01-01"]),
                                 "moved_in": ts(["2020-05-01 10:30", "2023-11-20 08:00", "2019-01-02 00:00"]),
                                 "birthday": ts(["1990-03-05", "1990-03-05", "1985-12-31"]).date}),
        "labels": pd.DataFrame({"user_id": ["u1", "u1", "u2"], "y": [0, 1, 0],
                                "as_of": ts(["2024-01-15", "2024-02-15", "2024-01-15"])})})
    spec = parse_spec(SPEC, "dd.yaml")
    pipeline.features_apply(workspace, spec)
    types = {f.name: f.dtype for t in load_manifest(workspace, "dd").tables for f in t.features}
    assert types == {"profile__moved_in": "UnixTimestamp", "profile__birthday": "UnixTimestamp"}
    assert "UnixTimestamp" in (workspace.feature_repo / "projects" / "dd.py").read_text()
    _, path = pipeline.features_dataset(workspace, spec)
    frame = pd.read_parquet(path).sort_values(["user_id", "event_timestamp"]).reset_index(drop=True)
    assert str(frame["profile__moved_in"].dtype) == "datetime64[us, UTC]"
    assert frame["profile__moved_in"].tolist() == [pd.Timestamp("2020-05-01 10:30", tz="UTC"),  # as of 01-15
                                                   pd.Timestamp("2023-11-20 08:00", tz="UTC"),  # the later row
                                                   pd.Timestamp("2019-01-02", tz="UTC")]
    assert frame["profile__birthday"].tolist()[2] == pd.Timestamp("1985-12-31", tz="UTC")
