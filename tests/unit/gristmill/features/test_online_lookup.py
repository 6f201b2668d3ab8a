"""The bento's lookup answers what ``get_online_features(...).to_dict()`` answers, on Gristmill's
SQLite and Redis stores: every value type with nulls, repeated and unknown ids, two views in one
service, a projection of a view; Feast's own path for a service with an on-demand view. Real Feast,
real SQLite, real Redis at 127.0.0.1:6379 db 14 (skipped when no Redis answers there)."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from test_online_store import END, KEY, REDIS_DB, TS, TYPES, _feast_repo, _redis, _rows, _typed_view

from gristmill.features.naming import REDIS_STORE_TYPE, SQLITE_STORE_TYPE
from gristmill.features.online_lookup import lookup


@pytest.fixture(scope="module", autouse=True)
def _close_offline_store():
    yield
    from gristmill.features.store import _release_offline_store

    _release_offline_store()


def _store(tmp_path, kind: str):
    from feast import FeatureService, FeatureView, Field, FileSource, RequestSource
    from feast import types as ft
    from feast.on_demand_feature_view import on_demand_feature_view

    if kind == "redis":
        _redis().flushdb()
        online = f'  type: {REDIS_STORE_TYPE}\n  connection_string: "127.0.0.1:6379,db={REDIS_DB}"'
    else:
        online = f"  type: {SQLITE_STORE_TYPE}\n  path: {tmp_path / 'online.db'}"
    frame = _rows(400, seed=21)
    other = pd.DataFrame({KEY: [f"c{i:05d}" for i in range(0, 400, 2)], TS: pd.Timestamp("2024-06-01", tz="UTC"),
                          "g_dbl": np.linspace(-1, 1, 200), "g_int": pd.array(range(200), dtype="Int64")})
    other.loc[5, "g_dbl"] = None
    for data, name in ((frame, "v"), (other, "w")):
        data.to_parquet(tmp_path / f"{name}.parquet", index=False, coerce_timestamps="us",
                        allow_truncated_timestamps=True)
    store = _feast_repo(tmp_path / "repo", online, "gml")
    entity, v = _typed_view(tmp_path / "v.parquet")
    w = FeatureView(name="w", entities=[entity], ttl=timedelta(0), online=True,
                    schema=[Field(name="g_dbl", dtype=ft.Float64), Field(name="g_int", dtype=ft.Int64)],
                    source=FileSource(name="w_src", path=str(tmp_path / "w.parquet"), timestamp_field=TS))
    request = RequestSource(name="req", schema=[Field(name="bump", dtype=ft.Float64)])

    @on_demand_feature_view(sources=[w, request], schema=[Field(name="g_bumped", dtype=ft.Float64)], mode="python")
    def bumped(inputs: dict) -> dict:
        return {"g_bumped": [None if g is None else g + b for g, b in zip(inputs["g_dbl"], inputs["bump"])]}

    store.apply([entity, v, w, request, bumped, FeatureService(name="both", features=[v, w]),
                 FeatureService(name="part", features=[v[["f_str", "f_ts"]], w[["g_int"]]]),
                 FeatureService(name="odfv", features=[w, bumped])])
    store.materialize(datetime(2023, 1, 1, tzinfo=timezone.utc), END)
    return store


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_lookup_equals_feasts_to_dict(kind, tmp_path):
    store = _store(tmp_path, kind)
    ids = [f"c{i:05d}" for i in range(0, 400, 3)] + ["c00003", "c00003", "nobody"]
    for name in ("both", "part"):
        service = store.get_feature_service(name)
        feast = store.get_online_features(features=service, entity_rows=[{KEY: i} for i in ids]).to_dict()
        got = lookup(store, service, {KEY: ids})
        assert got == feast, name
    both = lookup(store, store.get_feature_service("both"), {KEY: ids})
    assert set(both) == {KEY, *TYPES, "g_dbl", "g_int"}
    assert all(both[c][-1] is None for c in TYPES)  # the unknown id
    assert sum(v is None for v in both["f_dbl"]) > 5 and sum(v is None for v in both["g_int"]) > 5
    stamps = [t for t in both["f_ts"] if t is not None]
    assert stamps and all(isinstance(t, datetime) and t.tzinfo is not None for t in stamps)

    odfv = store.get_feature_service("odfv")  # on-demand views: Feast's own path, same answer
    rows = {KEY: ids[:10], "bump": [1.5] * 10}
    assert lookup(store, odfv, rows) == store.get_online_features(
        features=odfv, entity_rows=[{KEY: i, "bump": 1.5} for i in ids[:10]]).to_dict()
    assert lookup(store, odfv, rows)["g_bumped"][0] == pytest.approx(-1 + 1.5)
    if kind == "redis":
        _redis().flushdb()
