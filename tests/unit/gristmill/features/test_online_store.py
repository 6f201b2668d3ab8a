"""Gristmill's bulk online stores write what Feast's own writers write, byte for byte (Redis: Feast's
hashes; SQLite: Gristmill's packed rows, whichever writer), and Feast's reads
(``get_online_features``, ``feast serve``) answer the same from them as from Feast's own stores. Real Feast, real SQLite,
real Redis at 127.0.0.1:6379 db 14 (skipped when no Redis answers there)."""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gristmill.features.naming import REDIS_STORE_TYPE, SQLITE_STORE_TYPE

REDIS_DB = 14  # a db no other test or bench uses (13: team mode, 12: features_bench); flushed
KEY, TS, CREATED = "cid", "event_timestamp", "created_timestamp"
TYPES = {"f_int": "Int64", "f_dbl": "Float64", "f_str": "String", "f_bool": "Bool", "f_ts": "UnixTimestamp"}
END = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _redis():
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis answers at 127.0.0.1:6379")
    return client


@pytest.fixture(scope="module", autouse=True)
def _close_offline_store():
    """Feast's materialize leaves ibis's DuckDB connection open: close it before the interpreter ends."""
    yield
    from gristmill.features.store import _release_offline_store

    _release_offline_store()


@pytest.fixture
def redis_db():
    client = _redis()
    client.flushdb()
    yield client
    client.flushdb()


def _rows(n: int, seed: int) -> pd.DataFrame:
    """Two rows per entity (the later one is the latest), every type with nulls and edge values."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(n)] * 2
    m = len(ids)
    base = pd.Timestamp("2024-01-01", tz="UTC")
    frame = pd.DataFrame({
        KEY: ids,
        TS: base + pd.to_timedelta(np.r_[np.zeros(n), rng.integers(1, 10**6, n)] * 1e6 + rng.integers(0, 999, m),
                                   unit="us"),
        "f_int": pd.array(rng.integers(-2**40, 2**40, m), dtype="Int64"),
        "f_dbl": rng.standard_normal(m) * 10.0 ** rng.integers(-8, 20, m),
        "f_str": [("é" * (i % 150)) if i % 9 else "" for i in range(m)],
        "f_bool": pd.array(rng.random(m) < 0.5, dtype="boolean"),
        "f_ts": base + pd.to_timedelta(rng.integers(-10**9, 10**9, m), unit="s"),
    })
    frame[CREATED] = frame[TS] + pd.Timedelta(seconds=5)
    nulls = rng.random((m, 5)) < 0.1
    for j, col in enumerate(TYPES):
        frame.loc[nulls[:, j], col] = None
    frame.loc[3, "f_dbl"] = np.nan
    frame.loc[4, "f_dbl"], frame.loc[5, "f_dbl"], frame.loc[6, "f_int"] = 0.0, 1e16, 0
    return frame


def _feast_repo(repo: Path, online: str, project: str):
    """A FeatureStore over a new repo folder with the online store config ``online``."""
    from feast import FeatureStore

    repo.mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        f"project: {project}\nprovider: local\nregistry: {repo / 'registry.db'}\n"
        f"offline_store:\n  type: duckdb\nonline_store:\n{online}\nentity_key_serialization_version: 3\n")
    return FeatureStore(repo_path=str(repo))


def _typed_view(data: Path):
    """The entity and the view of the five types over the Parquet file ``data``."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast import types as ft

    entity = Entity(name="c", join_keys=[KEY], value_type=ValueType.STRING)
    return entity, FeatureView(name="v", entities=[entity], ttl=timedelta(0), online=True,
                               schema=[Field(name=c, dtype=getattr(ft, t)) for c, t in TYPES.items()],
                               source=FileSource(name="v_src", path=str(data), timestamp_field=TS,
                                                 created_timestamp_column=CREATED))


def _repo(root: Path, name: str, online: str, frame: pd.DataFrame, project: str = "gmt"):
    """A Feast repo holding one view of the five types over ``frame``, applied."""
    from feast import FeatureService

    data = root / f"{name}.parquet"
    if not data.exists():
        frame.to_parquet(data, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    store = _feast_repo(root / name, online, project)
    entity, view = _typed_view(data)
    store.apply([entity, view, FeatureService(name="svc", features=[view])])
    return store


def _latest(frame: pd.DataFrame) -> pa.Table:
    latest = frame.sort_values([KEY, TS]).groupby(KEY).tail(1).reset_index(drop=True)
    return pa.Table.from_pandas(latest, preserve_index=False)


def _packed_rows(store, view: str = "v") -> list:
    """The rows of Gristmill's packed SQLite table of ``view``, in key order."""
    with sqlite3.connect(store.config.online_store.path) as db:
        return db.execute(f"SELECT entity_key, layout, event_ts, created_ts, vals FROM gmt_{view}__packed "
                          "ORDER BY entity_key").fetchall()


def _bulk_write(store, frame: pd.DataFrame) -> int:
    online = store._get_provider().online_store
    return online.write_latest(store.config, store.get_feature_view("v"), _latest(frame), KEY, CREATED)


def _lookup(store, ids) -> dict:
    return store.get_online_features(features=store.get_feature_service("svc"),
                                     entity_rows=[{KEY: i} for i in ids]).to_dict()


def test_codec_bytes_equal_feasts_serializer_for_every_type():
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.utils import _columns_to_proto_values
    from feast.value_type import ValueType

    from gristmill.features.online_codec import entity_keys, value_bytes, value_texts

    table = pa.Table.from_pandas(_rows(1500, seed=1), preserve_index=False)
    value_types = {"Int64": ValueType.INT64, "Float64": ValueType.DOUBLE, "String": ValueType.STRING,
                   "Bool": ValueType.BOOL, "UnixTimestamp": ValueType.UNIX_TIMESTAMP}
    protos = _columns_to_proto_values(table.to_batches()[0], [(c, value_types[t]) for c, t in TYPES.items()],
                                      allow_missing=False)
    for col, kind in TYPES.items():
        assert value_bytes(table.column(col), kind).to_pylist() == [p.SerializeToString() for p in protos[col]], col
        assert value_texts(table.column(col), kind) == [extract_text_and_num(p, False)[0] for p in protos[col]], col
        assert table.column(col).null_count > 0  # nulls were part of the comparison
    ids = table.column(KEY)
    assert entity_keys(ids, KEY).to_pylist() == [
        serialize_entity_key(EntityKey(join_keys=[KEY], entity_values=[Value(string_val=v)]), 3)
        for v in ids.to_pylist()]
    with pytest.raises(ValueError, match="no online encoding for Feast type 'Float32'"):
        value_bytes(table.column("f_dbl"), "Float32")


def _micros(stamps) -> list:
    return [None if pd.isna(t) else (t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
            for t in stamps]


def test_sqlite_packs_a_row_per_entity_that_feasts_writers_and_the_bulk_writer_write_alike(tmp_path):
    """Feast's own materialize into Gristmill's class (protobuf per value) and the column-at-a-time
    bulk writer give the same rows byte for byte; lookups answer what Feast's built-in SQLite store
    answers from its row-per-feature layout, and the stored times are the offline ones, exactly."""
    frame = _rows(2000, seed=2)
    builtin = _repo(tmp_path, "feast", "  type: sqlite\n  path: " + str(tmp_path / "feast.db"), frame)
    by_feast = _repo(tmp_path, "gmfeast", f"  type: {SQLITE_STORE_TYPE}\n  path: " + str(tmp_path / "gmfeast.db"),
                     frame)
    bulk_store = _repo(tmp_path, "bulk", f"  type: {SQLITE_STORE_TYPE}\n  path: " + str(tmp_path / "bulk.db"), frame)
    builtin.materialize(datetime(2023, 1, 1, tzinfo=timezone.utc), END)
    by_feast.materialize(datetime(2023, 1, 1, tzinfo=timezone.utc), END)  # -> online_write_batch
    assert _bulk_write(bulk_store, frame) == 2000
    rows = _packed_rows(bulk_store)
    assert len(rows) == 2000  # one row per entity, not one per entity and feature
    assert rows == _packed_rows(by_feast)
    latest = _latest(frame).to_pandas().sort_values(KEY)
    assert sorted(r[2] for r in rows) == sorted(_micros(latest[TS]))
    assert sorted(r[3] for r in rows) == sorted(_micros(latest[CREATED]))

    ids = [f"c{i:05d}" for i in range(0, 2000, 7)] + ["nobody"]
    got = _lookup(bulk_store, ids)  # the one-query read of Gristmill's store
    assert got == _lookup(builtin, ids)
    assert got["f_int"][-1] is None and sum(v is None for v in got["f_dbl"]) > 1
    stamps = bulk_store.get_online_features(features=bulk_store.get_feature_service("svc"),
                                            entity_rows=[{KEY: i} for i in ids[:-1]]).to_dict(
                                                include_event_timestamps=True)
    want = latest.set_index(KEY)[TS]  # to_dict gives whole seconds
    assert stamps["f_int__ts"] == [int(want[i].timestamp() // 1) for i in ids[:-1]]

    assert _bulk_write(bulk_store, frame) == 2000  # an upsert: rewriting leaves the same rows
    assert _packed_rows(bulk_store) == rows
    pandas_store = _repo(tmp_path, "pandas", f"  type: {SQLITE_STORE_TYPE}\n  path: " + str(tmp_path / "pd.db"),
                         frame)
    pandas_store.write_to_online_store("v", _latest(frame).to_pandas())
    assert _packed_rows(pandas_store) == rows


def test_sqlite_rows_keep_their_layout_when_a_view_gains_a_feature(tmp_path, caplog):
    """Rows written before ``feast apply`` changed a view read back with the features they were
    written with (the new one missing); a layout whose names were lost reads as missing, loudly."""
    import logging

    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast import types as ft

    frame = _rows(200, seed=7)
    frame["f_new"] = np.arange(len(frame), dtype=float)
    store = _repo(tmp_path, "bulk", f"  type: {SQLITE_STORE_TYPE}\n  path: " + str(tmp_path / "bulk.db"), frame)
    _bulk_write(store, frame)
    ids = [f"c{i:05d}" for i in range(0, 200, 3)]
    before = _lookup(store, ids)
    wider = FeatureView(name="v", entities=[Entity(name="c", join_keys=[KEY], value_type=ValueType.STRING)],
                        ttl=timedelta(0), online=True,
                        schema=[Field(name=c, dtype=getattr(ft, t)) for c, t in {**TYPES, "f_new": "Float64"}.items()],
                        source=FileSource(name="v_src", path=str(tmp_path / "bulk.parquet"), timestamp_field=TS,
                                          created_timestamp_column=CREATED))
    store.apply([wider])
    old = store.get_online_features(features=[f"v:{c}" for c in [*TYPES, "f_new"]],
                                    entity_rows=[{KEY: i} for i in ids]).to_dict()
    assert {c: old[c] for c in TYPES} == {c: before[c] for c in TYPES}
    assert old["f_new"] == [None] * len(ids)
    assert _bulk_write(store, frame[frame[KEY] == "c00000"]) == 1  # c00000 now in the new layout
    new = store.get_online_features(features=["v:f_new", "v:f_int"], entity_rows=[{KEY: "c00000"}]).to_dict()
    assert new["f_new"] == [200.0] and new["f_int"] == [before["f_int"][0]]  # its later row, index 200

    with sqlite3.connect(tmp_path / "bulk.db") as db:
        db.execute("DELETE FROM gristmill_online_layouts")
    fresh = _repo(tmp_path, "again", f"  type: {SQLITE_STORE_TYPE}\n  path: " + str(tmp_path / "bulk.db"), frame)
    fresh.apply([wider])
    with caplog.at_level(logging.WARNING, logger="gristmill.features.online_store"):
        lost = fresh.get_online_features(features=["v:f_int"], entity_rows=[{KEY: i} for i in ids]).to_dict()
    assert lost["f_int"][0] == before["f_int"][0]  # the current layout needs no stored names
    assert lost["f_int"][1:] == [None] * (len(ids) - 1)
    assert "name a layout gristmill_online_layouts lacks" in caplog.text


@pytest.mark.parametrize("how", ["apply", "read", "write"])
def test_rows_in_feasts_layout_are_moved_into_packed_rows_on_first_use(how, tmp_path, caplog):
    """A store written in Feast's row-per-feature layout (an earlier release, or Feast's built-in
    class) reads the same through Gristmill's class after ``feast apply``, at the first lookup, or
    at the first write: the rows are moved, once, with a warning that counts them."""
    import logging

    frame = _rows(300, seed=8)
    path = tmp_path / "online.db"
    builtin = _repo(tmp_path, "feast", f"  type: sqlite\n  path: {path}", frame)
    builtin.materialize(datetime(2023, 1, 1, tzinfo=timezone.utc), END)
    ids = [f"c{i:05d}" for i in range(0, 300, 7)] + ["nobody"]
    expected = _lookup(builtin, ids)
    stamps = builtin.get_online_features(features=builtin.get_feature_service("svc"),
                                         entity_rows=[{KEY: i} for i in ids]).to_dict(include_event_timestamps=True)
    yaml = f"  type: {SQLITE_STORE_TYPE}\n  path: {path}"
    with caplog.at_level(logging.WARNING, logger="gristmill.features.online_store"):
        if how == "apply":
            ours = _repo(tmp_path, "ours", yaml, frame)
        else:  # the repo switched to Gristmill's class by hand, no apply since
            (Path(builtin.repo_path) / "feature_store.yaml").write_text(
                (Path(builtin.repo_path) / "feature_store.yaml").read_text().replace("  type: sqlite", yaml.split("\n")[0]))
            from feast import FeatureStore

            ours = FeatureStore(repo_path=builtin.repo_path)
            if how == "write":
                assert _bulk_write(ours, frame[frame[KEY] == "c00007"]) == 1
        assert _lookup(ours, ids) == expected
    assert "moved 300 entities of gmt_v" in caplog.text
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "gmt_v" not in tables and "gmt_v__packed" in tables
    assert len(_packed_rows(ours)) == 300
    moved = ours.get_online_features(features=ours.get_feature_service("svc"),
                                     entity_rows=[{KEY: i} for i in ids]).to_dict(include_event_timestamps=True)
    assert moved["f_int__ts"] == stamps["f_int__ts"]


def test_redis_bulk_hashes_equal_feasts_materialize_and_read_back_equal(tmp_path, redis_db):
    frame = _rows(2000, seed=3)
    conn = f'  type: {{}}\n  connection_string: "127.0.0.1:6379,db={REDIS_DB}"'
    feast_store = _repo(tmp_path, "feast", conn.format("redis"), frame, project="gmtfeast")
    bulk_store = _repo(tmp_path, "bulk", conn.format(REDIS_STORE_TYPE), frame, project="gmtbulk")
    feast_store.materialize(datetime(2023, 1, 1, tzinfo=timezone.utc), END)
    assert _bulk_write(bulk_store, frame) == 2000

    def hashes(project: str) -> dict:
        suffix = project.encode()
        return {k[:-len(suffix)]: redis_db.hgetall(k) for k in redis_db.scan_iter(count=10_000)
                if k.endswith(suffix)}

    expected = hashes("gmtfeast")
    assert len(expected) == 2000 and all(len(h) == len(TYPES) + 1 for h in expected.values())
    assert hashes("gmtbulk") == expected
    ids = [f"c{i:05d}" for i in range(0, 2000, 7)] + ["nobody"]
    assert _lookup(bulk_store, ids) == _lookup(feast_store, ids)


def test_a_refused_redis_command_raises_and_leaves_no_half_read_connection(tmp_path, redis_db):
    import redis

    frame = _rows(50, seed=4)
    store = _repo(tmp_path, "bulk", f'  type: {REDIS_STORE_TYPE}\n  connection_string: "127.0.0.1:6379,db={REDIS_DB}"',
                  frame)
    online = store._get_provider().online_store
    client = online._get_client(store.config.online_store)
    key = b"\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00cid\x02\x00\x00\x00\x06\x00\x00\x00c00001gmt"
    client.set(key, b"not a hash")  # HSET on a string key is refused (WRONGTYPE)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        _bulk_write(store, frame)
    client.delete(key)
    assert _bulk_write(store, frame) == 50
    assert client.ping()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_feast_cli_apply_and_serve_work_on_gristmills_store(tmp_path):
    """`feast apply` and `feast serve` import the store class by path and answer from its rows."""
    frame = _rows(300, seed=5)
    store = _repo(tmp_path, "bulk", f"  type: {SQLITE_STORE_TYPE}\n  path: " + str(tmp_path / "bulk.db"), frame)
    _bulk_write(store, frame)
    repo = Path(store.repo_path)
    types = ", ".join(f"Field(name={c!r}, dtype={t})" for c, t in TYPES.items())
    (repo / "defs.py").write_text(  # the same objects as a repo's definitions file
        "from datetime import timedelta\n"
        "from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType\n"
        "from feast.types import Bool, Float64, Int64, String, UnixTimestamp\n"
        f"c = Entity(name='c', join_keys=['{KEY}'], value_type=ValueType.STRING)\n"
        f"v = FeatureView(name='v', entities=[c], ttl=timedelta(0), online=True, schema=[{types}],\n"
        f"    source=FileSource(name='v_src', path={str(tmp_path / 'bulk.parquet')!r}, timestamp_field='{TS}',\n"
        f"                      created_timestamp_column='{CREATED}'))\n"
        "svc = FeatureService(name='svc', features=[v])\n")
    feast = shutil.which("feast", path=str(Path(sys.executable).parent))
    env = {**os.environ, "FEAST_USAGE": "False"}
    applied = subprocess.run([feast, "apply"], cwd=repo, capture_output=True, text=True, env=env, timeout=120)
    assert applied.returncode == 0, applied.stderr[-2000:]
    port = _port()
    server = subprocess.Popen([feast, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        body = json.dumps({"feature_service": "svc", "entities": {KEY: ["c00001", "c00002"]}}).encode()
        deadline, answer = time.monotonic() + 90, None
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/get-online-features", data=body,
                                             headers={"Content-Type": "application/json"})
                answer = json.loads(urllib.request.urlopen(req, timeout=5).read())
            except urllib.error.HTTPError:
                raise
            except OSError:  # not listening yet
                time.sleep(0.5)
        assert answer is not None, (server.stderr.read() if server.poll() is not None else b"")[-2000:]
        names = answer["metadata"]["feature_names"]
        served = {n: r["values"] for n, r in zip(names, answer["results"])}
        direct = _lookup(store, ["c00001", "c00002"])
        assert served["f_str"] == direct["f_str"] and served["f_int"] == direct["f_int"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_views_or_settings_the_bulk_writer_lacks_are_left_to_feasts_writer(tmp_path):
    """A Float32 feature (hand-written view) or Redis key expiry: bulk_ready says no, and
    write_latest refuses in one message instead of writing something else."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32

    frame = _rows(20, seed=6)
    store = _repo(tmp_path, "bulk", f"  type: {SQLITE_STORE_TYPE}\n  path: " + str(tmp_path / "bulk.db"), frame)
    online, fv = store._get_provider().online_store, store.get_feature_view("v")
    assert online.bulk_ready(store.config, fv)
    odd = FeatureView(name="odd", entities=[Entity(name="c", join_keys=[KEY], value_type=ValueType.STRING)],
                      schema=[Field(name="x", dtype=Float32)],
                      source=FileSource(name="odd_src", path=str(tmp_path / "bulk.parquet"), timestamp_field=TS))
    assert not online.bulk_ready(store.config, odd)
    with pytest.raises(ValueError, match="use Feast's writer"):
        online.write_latest(store.config, odd, _latest(frame), KEY)

    from gristmill.features.online_store import GristmillRedisOnlineStore, GristmillRedisOnlineStoreConfig

    expiring = GristmillRedisOnlineStoreConfig(connection_string=f"127.0.0.1:6379,db={REDIS_DB}", key_ttl_seconds=60)
    redis_cfg = type("RepoConfig", (), {"online_store": expiring})()  # bulk_ready reads only this
    assert not GristmillRedisOnlineStore().bulk_ready(redis_cfg, fv)
