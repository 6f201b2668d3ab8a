"""Gristmill's point-in-time join (:mod:`gristmill.features.pit`) against Feast's own
``get_historical_features`` on one real Feast repo: several views, a TTL, rows exactly at the as-of
time, entities with no rows, tied timestamps broken by the created timestamp, late rows, a field
mapping, naive timestamps, a projection, an on-demand view; and the fallback to Feast."""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

KEY, TS = "customer_id", "event_timestamp"


def _t(values) -> pd.Series:
    return pd.Series(pd.to_datetime(values, utc=True, format="ISO8601")).astype("datetime64[us, UTC]")


def _files(folder) -> dict[str, str]:
    """The views' Parquet files; rows out of time order on purpose (late rows at the end)."""
    orders = pd.DataFrame({
        KEY: ["c1", "c1", "c1", "c1", "c2", "c4", "c2", "c1"],
        TS: _t(["2024-01-01", "2024-01-05", "2024-01-05", "2024-01-10", "2024-01-03", "2024-02-01",
                "2024-01-02", "2024-01-07"]),  # the last two arrived late
        "created": _t(["2024-01-01", "2024-01-05", "2024-01-06", "2024-01-10", "2024-01-03", "2024-02-01",
                       "2024-01-20", "2024-01-20"]),
        "total": [1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 6.0, 7.0],
        "n": np.array([1, 2, 3, 4, 5, 8, 6, 7], dtype="int64"),
        "flag": [True, False, True, False, True, True, False, True],
        "tier": ["a", "b", "c", "d", "e", "h", "f", "g"],
    })
    profile = pd.DataFrame({  # naive timestamps (UTC), a column renamed by the source's field mapping
        KEY: ["c1", "c1", "c2"],
        "updated": pd.to_datetime(["2024-01-01", "2024-01-04", "2024-01-01"]).astype("datetime64[us]"),
        "segment_src": ["s1", "s2", "s3"],
        "score": [0.5, None, 0.25],
    })
    visits = pd.DataFrame({KEY: ["c1", "c2", "c2"], "ts": _t(["2023-12-01", "2023-12-20", "2024-01-04"]),
                           "visits": np.array([10, 20, 30], dtype="int64")})
    paths = {}
    for name, frame in (("orders", orders), ("profile", profile), ("visits", visits)):
        paths[name] = str(folder / f"{name}.parquet")
        frame.to_parquet(paths[name], index=False, coerce_timestamps="us")
    return paths


def _objects(paths: dict[str, str], uri_source: bool = False) -> list:
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, RequestSource, ValueType
    from feast.on_demand_feature_view import on_demand_feature_view
    from feast.types import Bool, Float64, Int64, String

    customer = Entity(name="customer", join_keys=[KEY], value_type=ValueType.STRING)
    orders = FeatureView(
        name="orders", entities=[customer], ttl=timedelta(0),
        schema=[Field(name="total", dtype=Float64), Field(name="n", dtype=Int64),
                Field(name="flag", dtype=Bool), Field(name="tier", dtype=String)],
        source=FileSource(name="orders_src", path=paths["orders"], timestamp_field=TS,
                          created_timestamp_column="created"))
    profile = FeatureView(
        name="profile", entities=[customer], ttl=timedelta(days=2),
        schema=[Field(name="segment", dtype=String), Field(name="score", dtype=Float64)],
        source=FileSource(name="profile_src", path=("file://" if uri_source else "") + paths["profile"],
                          timestamp_field="updated", field_mapping={"segment_src": "segment"}))
    visits = FeatureView(
        name="visits", entities=[customer], ttl=timedelta(days=30),
        schema=[Field(name="visits", dtype=Int64)],
        source=FileSource(name="visits_src", path=paths["visits"], timestamp_field="ts"))
    request = RequestSource(name="req", schema=[Field(name="request_time", dtype=Float64)])

    @on_demand_feature_view(sources=[orders, request], schema=[Field(name="total_x_time", dtype=Float64)],
                            mode="python")
    def derived(inputs: dict) -> dict:
        return {"total_x_time": [None if t is None else t * r for t, r in
                                 zip(inputs["total"], inputs["request_time"])]}

    return [customer, orders, profile, visits, request, derived,
            FeatureService(name="all", features=[orders, profile, visits, derived]),
            FeatureService(name="part", features=[visits, orders[["tier", "total"]]])]


def _store(folder, uri_source: bool = False):
    from feast import FeatureStore

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feature_store.yaml").write_text(
        f"project: pit_test\nprovider: local\nregistry: {folder / 'registry.db'}\n"
        f"offline_store:\n  type: duckdb\nonline_store:\n  type: sqlite\n  path: {folder / 'online.db'}\n"
        "entity_key_serialization_version: 3\n")
    store = FeatureStore(repo_path=str(folder))
    store.apply(_objects(_files(folder), uri_source))
    return store


@pytest.fixture(scope="module", autouse=True)
def _release_feast_duckdb():
    """Close the DuckDB connection Feast's offline store keeps (see ``store._release_offline_store``)."""
    from gristmill.features.store import _release_offline_store

    yield
    _release_offline_store()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return _store(tmp_path_factory.mktemp("pit") / "repo")


def _labels() -> pd.DataFrame:
    rows = [("c1", "2024-01-05", 1),           # exactly at two tied orders rows: the later-created wins
            ("c1", "2024-01-05", 0),           # the same label row twice: both kept
            ("c1", "2024-01-06", 1),           # profile of 01-04 + 2 days = the as-of time: still valid
            ("c1", "2024-01-06 00:00:01", 0),  # one second later: expired
            ("c1", "2024-01-08", 1),           # the late row of 01-07
            ("c1", "2023-12-31", 0),           # before any orders and profile row
            ("c2", "2024-01-02 12:00", 1),     # the late row of 01-02
            ("c2", "2024-01-04", 0),           # profile 3 days old (expired), visits of 01-04 exactly
            ("c3", "2024-01-05", 1),           # an entity with no rows in any view
            ("c4", "2024-01-15", 0)]           # rows only after the as-of time
    frame = pd.DataFrame(rows, columns=[KEY, TS, "y"])
    frame[TS] = _t(frame[TS])
    frame["request_time"] = (frame[TS] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return frame


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values([KEY, TS, "y"]).reset_index(drop=True)


def _both(store, service_name: str, full_feature_names: bool = False):
    from gristmill.features import pit

    service = store.get_feature_service(service_name)
    plan = pit.plan(store, service, full_feature_names)
    assert not isinstance(plan, str), plan
    ours = pit.retrieve(plan, _labels()).to_df()
    feast = store.get_historical_features(entity_df=_labels(), features=service,
                                          full_feature_names=full_feature_names).to_df()
    return _sorted(ours), _sorted(feast)


def test_join_equals_feast_on_every_case(store):
    ours, feast = _both(store, "all")
    assert len(ours) == len(_labels()) == 10
    pd.testing.assert_frame_equal(ours, feast)  # same columns, order, dtypes and values


def test_join_follows_feast_semantics(store):
    ours, _ = _both(store, "all")
    row = lambda key, at: ours[(ours[KEY] == key) & (ours[TS] == pd.Timestamp(at, tz="UTC"))]  # noqa: E731
    tied = row("c1", "2024-01-05")
    assert list(tied["total"]) == [3.0, 3.0] and list(tied["y"]) == [0, 1]  # created-later row, twice
    assert list(tied["segment"]) == ["s2", "s2"] and tied["score"].isna().all()  # a null value stays null
    assert row("c1", "2024-01-06")["segment"].item() == "s2"  # at the TTL's edge
    assert pd.isna(row("c1", "2024-01-06 00:00:01")["segment"].item())
    assert row("c1", "2024-01-08")["tier"].item() == "g"  # late row
    early = row("c1", "2023-12-31")
    assert pd.isna(early["total"].item()) and early["visits"].item() == 10  # visits: 30 days, within
    assert row("c2", "2024-01-02 12:00")["n"].item() == 6
    c2 = row("c2", "2024-01-04")
    assert pd.isna(c2["segment"].item()) and c2["visits"].item() == 30 and c2["total"].item() == 5.0
    for key, at in (("c3", "2024-01-05"), ("c4", "2024-01-15")):
        assert row(key, at)[["total", "segment", "visits", "total_x_time"]].isna().all(axis=None)
    late = row("c1", "2024-01-08")
    assert late["total_x_time"].item() == 7.0 * late["request_time"].item()  # the on-demand view ran


def test_projection_and_full_feature_names_equal_feast(store):
    ours, feast = _both(store, "part")
    assert [c for c in ours.columns if c not in _labels().columns] == ["visits", "tier", "total"]
    pd.testing.assert_frame_equal(ours, feast)
    ours, feast = _both(store, "all", full_feature_names=True)
    assert "orders__total" in ours.columns and "derived__total_x_time" in ours.columns
    pd.testing.assert_frame_equal(ours, feast)


def test_historical_takes_the_gristmill_join_and_says_so(store, caplog):
    from gristmill.features.store import historical

    service = store.get_feature_service("all")
    entity_df = _labels()[[KEY, TS, "y"]]
    with caplog.at_level(logging.INFO, logger="gristmill.features"):
        frame = historical(store, entity_df, service)
    assert "by Gristmill (DuckDB ASOF JOIN of 3 views)" in caplog.text
    assert "request_time" not in frame.columns
    feast = store.get_historical_features(entity_df=_labels(), features=service).to_df()
    pd.testing.assert_frame_equal(_sorted(frame), _sorted(feast.drop(columns=["request_time"])))


def test_a_source_it_cannot_read_falls_back_to_feast(tmp_path, caplog):
    from gristmill.features import pit
    from gristmill.features.store import historical

    store = _store(tmp_path / "repo", uri_source=True)  # profile read through a file:// URI
    service = store.get_feature_service("all")
    reason = pit.plan(store, service)
    assert isinstance(reason, str) and "profile" in reason and "not a local file" in reason
    with caplog.at_level(logging.INFO, logger="gristmill.features"):
        frame = historical(store, _labels()[[KEY, TS, "y"]], service)
    assert "by Feast's get_historical_features" in caplog.text and "profile" in caplog.text
    frame = _sorted(frame)
    assert list(frame["total"].fillna(-1)) == [-1, 3.0, 3.0, 3.0, 3.0, 7.0, 6.0, 5.0, -1, -1]
    assert list(frame["segment"].fillna("-")) == ["-", "s2", "s2", "s2", "-", "-", "s3", "-", "-", "-"]


def test_missing_request_data_is_feasts_error(store):
    from feast.errors import RequestDataNotFoundInEntityDfException

    from gristmill.features import pit

    plan = pit.plan(store, store.get_feature_service("all"))
    with pytest.raises(RequestDataNotFoundInEntityDfException):
        pit.retrieve(plan, _labels().drop(columns=["request_time"]))


def test_generated_project_training_set_takes_the_join_and_equals_feast(workspace, add_tables, caplog):
    """A project's generated views (events with windows and on-demand recency, a TTL table): the
    training set comes from Gristmill's join and holds what Feast's retrieval returns."""
    from gristmill import pipeline
    from gristmill.features.naming import REQUEST_TIME, helper_column
    from gristmill.features.store import load_manifest, open_store
    from gristmill.spec import parse_spec

    ts = pd.to_datetime
    add_tables(workspace, "gen", {
        "events": pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2"], "amount": [10.0, 20.0, 100.0, 5.0],
                                "ts": ts(["2024-01-01", "2024-01-10", "2024-01-20", "2024-01-03"])}),
        "profile": pd.DataFrame({"user_id": ["u1", "u2"], "plan": ["gold", "basic"],
                                 "updated": ts(["2024-01-01", "2024-01-01"])}),
        "labels": pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3"], "y": [0, 1, 1, 0],
                                "as_of": ts(["2023-12-31", "2024-01-10", "2024-01-15", "2024-01-15"])})})
    spec = parse_spec({"project": "gen", "sources": [{"path": "unused"}],
                       "entity": {"name": "user", "key": "user_id"},
                       "features": [{"table": "events", "timestamp": "ts", "kind": "events", "columns": ["amount"]},
                                    {"table": "profile", "timestamp": "updated", "ttl_days": 3}],
                       "label": {"table": "labels", "target": "y", "timestamp": "as_of"}}, "gen.yaml")
    pipeline.features_apply(workspace, spec)
    with caplog.at_level(logging.INFO, logger="gristmill.features"):
        _, path = pipeline.features_dataset(workspace, spec)
    assert "gen: point-in-time join by Gristmill (DuckDB ASOF JOIN of 2 views)" in caplog.text
    ours = pd.read_parquet(path)
    store = open_store(workspace)
    entity_df = pd.read_parquet(load_manifest(workspace, "gen").labels_path)
    entity_df[TS] = pd.to_datetime(entity_df[TS], utc=True)
    entity_df[REQUEST_TIME] = (entity_df[TS] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    feast = store.get_historical_features(entity_df=entity_df, features=store.get_feature_service("gen")).to_df()
    feast = feast.drop(columns=[c for c in feast.columns if helper_column(c)])
    key = ["user_id", TS]
    assert ours.shape == (4, feast.shape[1]) and "events__days_since_last" in ours.columns
    pd.testing.assert_frame_equal(ours.sort_values(key).reset_index(drop=True),
                                  feast.sort_values(key).reset_index(drop=True),
                                  check_dtype=False)  # the Parquet round trip: us timestamps, not ns
    assert ours.loc[ours["user_id"] == "u3", "events__count"].isna().all()
