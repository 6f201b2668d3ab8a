"""Gristmill's online stores: Feast's SQLite and Redis stores with a bulk write path.

Feast's own writers build a protobuf per value and issue a statement per value (SQLite) or a
command assembled in Python per entity (Redis): about 2 ms per entity of 50 features. These
subclasses keep Feast's data layout and reads untouched (``feast serve``, ``get_online_features``
and Feast's own ``materialize`` work as before) and add :meth:`write_latest`, which takes an Arrow
table of each entity's latest row and writes it a column at a time:

- the bytes come from :mod:`gristmill.features.online_codec` (the same bytes as Feast's writer);
- SQLite: one transaction per view, rows in primary-key order, ``executemany`` of Feast's upsert;
- Redis: one ``HSET`` of all the view's fields per entity, the RESP commands built by pyarrow and
  sent in chunks on one connection (a pipeline without redis-py's per-argument packing).

Unlike Feast's Redis writer, :meth:`write_latest` does not skip a row whose event time is not newer
than the stored one: Gristmill computes each entity's latest row over the whole offline history, so
a correction at the same instant (a later ``created_timestamp``) must replace what is stored.

The SQLite store also reads all the feature views of a lookup in one query (Feast's reads one
query per view). Name a store in ``feature_store.yaml`` by class path, e.g.
``online_store: {type: gristmill.features.online_store.GristmillSqliteOnlineStore, path: ...}``.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Literal

from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig

from gristmill.features.naming import REDIS_STORE_TYPE as REDIS_TYPE  # noqa: E402
from gristmill.features.naming import SQLITE_STORE_TYPE as SQLITE_TYPE  # noqa: E402

#: entities encoded and sent at a time: bounds memory (~60 MB a chunk of 10 features) and the
#: replies Redis buffers
CHUNK = 50_000
SQLITE_CACHE_KIB = 262_144  # page cache of the bulk write: the two indexes of 10M rows stay in it


class GristmillSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Feast's SQLite online store configuration (``path``), under Gristmill's store class."""

    type: Literal["gristmill.features.online_store.GristmillSqliteOnlineStore"] = SQLITE_TYPE  # type: ignore[assignment]


class GristmillRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """Feast's Redis online store configuration (``connection_string`` ...), under Gristmill's class."""

    type: Literal["gristmill.features.online_store.GristmillRedisOnlineStore"] = REDIS_TYPE  # type: ignore[assignment]


def feast_kind(dtype) -> str:
    """The codec's name of a Feast field type (``Float64`` ...); raises for the ones it lacks."""
    from gristmill.features.online_codec import KINDS

    name = str(dtype)
    if name not in KINDS:
        raise ValueError(f"no bulk online encoding for Feast type {name} (supported: {', '.join(KINDS)})")
    return name


def _feast_epoch_seconds(column):
    """What Feast's SQLite writer stores for a timestamp: ``int(naive_utc.timestamp())``, which
    Python reads as local time (UTC on these machines: then the UTC seconds, toward zero)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    us = pc.cast(pc.cast(column, pa.timestamp("us", "UTC")), pa.int64()).to_numpy(zero_copy_only=False)
    if time.timezone == 0 and not time.daylight:
        return np.where(us < 0, -((-us) // 10**6), us // 10**6).tolist()
    out = {}
    for v in np.unique(us).tolist():
        naive = datetime.fromtimestamp(v / 1e6, tz=timezone.utc).replace(tzinfo=None)
        out[v] = int(naive.timestamp())
    return [out[v] for v in us.tolist()]


def _sorted_by_key(frame, join_key: str):
    """``frame`` with its entity keys serialized (column ``__ek``), sorted by them."""
    import pyarrow.compute as pc

    from gristmill.features.online_codec import entity_keys

    frame = frame.append_column("__ek", entity_keys(frame.column(join_key), join_key))
    return frame.take(pc.sort_indices(frame, [("__ek", "ascending")]))


def _encodable(table) -> bool:
    from gristmill.features.online_codec import KINDS

    return all(str(f.dtype) in KINDS for f in table.features)


class GristmillSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store with a bulk writer and a one-query read of all views."""

    def bulk_ready(self, config, table) -> bool:
        """Whether :meth:`write_latest` can write ``table`` (else Feast's own writer must)."""
        store = config.online_store
        return (_encodable(table) and not getattr(store, "enable_openai_compatible_store", False)
                and not store.vector_enabled)

    def write_latest(self, config, table, frame, join_key: str, created: str | None = None) -> int:
        """Upsert every row of the Arrow table ``frame`` (one row per entity: ``join_key``, the
        view's timestamp field, its features) into the view's table; returns the rows written."""
        import numpy as np

        from gristmill.features.online_codec import value_bytes, value_texts
        from feast.infra.online_stores.sqlite import _quote_id, _table_id

        if not self.bulk_ready(config, table):
            raise ValueError("the bulk writer writes Feast's plain SQLite layout of Int64, Float64, String, "
                             "Bool and UnixTimestamp features: turn off vector_enabled and "
                             "enable_openai_compatible_store, or use Feast's writer")
        conn = self._get_conn(config)
        name = _table_id(config.project, table, config.registry.enable_online_feature_view_versioning)
        features = sorted(table.features, key=lambda f: f.name)  # the primary key's order
        kinds = [feast_kind(f.dtype) for f in features]
        upsert = (f"INSERT INTO {_quote_id(name)} (entity_key, feature_name, value, value_text, event_ts, "
                  "created_ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
                  "value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, "
                  "created_ts = excluded.created_ts;")
        frame = _sorted_by_key(frame, join_key)
        ts_field = table.batch_source.timestamp_field
        width = len(features)
        conn.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        with conn:
            for start in range(0, frame.num_rows, CHUNK):
                part = frame.slice(start, CHUNK)
                n = part.num_rows
                keys = np.repeat(np.array(part.column("__ek").to_pylist(), dtype=object), width)
                names = np.tile(np.array([f.name for f in features], dtype=object), n)
                values = np.empty((n, width), dtype=object)
                texts = np.empty((n, width), dtype=object)
                for j, (f, kind) in enumerate(zip(features, kinds)):
                    values[:, j] = value_bytes(part.column(f.name), kind).to_pylist()
                    texts[:, j] = value_texts(part.column(f.name), kind)
                stamps = np.repeat(np.array(_feast_epoch_seconds(part.column(ts_field)), dtype=object), width)
                made = (np.repeat(np.array(_feast_epoch_seconds(part.column(created)), dtype=object), width)
                        if created else np.full(n * width, None, dtype=object))
                conn.executemany(upsert, zip(keys.tolist(), names.tolist(), values.ravel().tolist(),
                                             texts.ravel().tolist(), stamps.tolist(), made.tolist()))
        return frame.num_rows

    def _read_features_per_fv(self, config, grouped_refs, join_key_values, entity_name_to_join_key_map,
                              online_features_response, full_feature_names: bool,
                              include_feature_view_version_metadata: bool) -> None:
        """All the views of a lookup in one SQL query (a UNION ALL), answered as Feast's reads."""
        from feast import utils
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.infra.online_stores.sqlite import _quote_id, _table_id
        from feast.protos.feast.types.Value_pb2 import Value as ValueProto

        plans, parts, params = [], [], []
        versioning = config.registry.enable_online_feature_view_versioning
        for n, (table, requested) in enumerate(grouped_refs):
            values, idxs, output_len = utils._get_unique_entities(table, join_key_values,
                                                                  entity_name_to_join_key_map)
            keys = [serialize_entity_key(k, entity_key_serialization_version=config.entity_key_serialization_version)
                    for k in utils._get_entity_key_protos(values)]
            plans.append((table, requested, idxs, output_len, keys))
            parts.append(f"SELECT {n}, entity_key, feature_name, value, CAST(event_ts AS INTEGER) FROM "
                         f"{_quote_id(_table_id(config.project, table, versioning))} "
                         f"WHERE entity_key IN ({','.join('?' * len(keys))})")
            params += keys
        if not plans:
            return
        if len(params) > 30_000:  # SQLite's limit of bound variables: Feast's per-view reads
            return super()._read_features_per_fv(config, grouped_refs, join_key_values,
                                                 entity_name_to_join_key_map, online_features_response,
                                                 full_feature_names, include_feature_view_version_metadata)
        found: list[dict] = [{} for _ in plans]
        for n, key, feature, blob, ts in self._get_conn(config).execute(" UNION ALL ".join(parts), params):
            val = ValueProto()
            val.ParseFromString(blob)
            entry = found[n].setdefault(key, [None, {}])
            entry[0] = ts
            entry[1][feature] = val
        for (table, requested, idxs, output_len, keys), rows in zip(plans, found):
            read = []
            for key in keys:
                entry = rows.get(key)
                if entry is None:
                    read.append((None, None))
                    continue
                ts = entry[0]  # as Feast's read: local wall time of the stored seconds, called UTC
                stamp = None if ts is None else datetime.fromtimestamp(int(ts)).replace(tzinfo=timezone.utc)
                read.append((stamp, entry[1]))
            utils._populate_response_from_feature_data(requested, read, idxs, online_features_response,
                                                       full_feature_names, table, output_len,
                                                       include_feature_view_version_metadata)


class GristmillRedisOnlineStore(RedisOnlineStore):
    """Feast's Redis online store with a bulk writer (reads: Feast's, one pipeline for all views)."""

    def bulk_ready(self, config, table) -> bool:
        """Whether :meth:`write_latest` can write ``table`` (else Feast's own writer must)."""
        from feast.infra.online_stores.redis import RedisType

        store = config.online_store
        return _encodable(table) and store.redis_type == RedisType.redis and not store.key_ttl_seconds

    def write_latest(self, config, table, frame, join_key: str, created: str | None = None) -> int:
        """``HSET`` every row of the Arrow table ``frame`` (one row per entity) into the entity's
        hash, as Feast lays it out; returns the entities written. ``created`` is not stored."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from feast.infra.online_stores.helpers import _mmh3
        from feast.infra.online_stores.redis import _versioned_fv_name

        from gristmill.features.online_codec import _binary, _varints, entity_keys, value_bytes

        store = config.online_store
        if not self.bulk_ready(config, table):
            raise ValueError("the bulk writer writes Int64, Float64, String, Bool and UnixTimestamp "
                             "features to one Redis server without key expiry: use Feast's writer")
        fv = _versioned_fv_name(table, config)
        features = list(table.features)
        kinds = [feast_kind(f.dtype) for f in features]
        ts_field = table.batch_source.timestamp_field
        project = config.project.encode()
        B = pa.large_binary()

        def lit(b: bytes):
            return pa.scalar(b, B)

        def bulk(n: int, value):
            """``$<len>\\r\\n<value>\\r\\n`` of each element of a binary array."""
            size = pc.cast(pc.cast(pc.binary_length(value), pa.large_string()), B)
            return [lit(b"$"), size, lit(b"\r\n"), value, lit(b"\r\n")]

        def fixed(b: bytes) -> bytes:
            return b"$%d\r\n%s\r\n" % (len(b), b)

        head = b"*%d\r\n" % (2 + 2 * (len(features) + 1)) + fixed(b"HSET")
        ts_name = fixed(f"_ts:{fv}".encode())
        client = self._get_client(store)
        written = 0
        frame = frame.combine_chunks()

        conn = client.connection_pool.get_connection()
        try:
            for start in range(0, frame.num_rows, CHUNK):
                part = frame.slice(start, CHUNK)
                n = part.num_rows
                keys = pc.binary_join_element_wise(entity_keys(part.column(join_key), join_key), lit(project),
                                                   lit(b""))
                pieces = [lit(head), *bulk(n, keys)]
                for f, kind in zip(features, kinds):
                    pieces += [lit(fixed(_mmh3(f"{fv}:{f.name}"))), *bulk(n, value_bytes(part.column(f.name), kind))]
                us = pc.cast(pc.cast(part.column(ts_field), pa.timestamp("us", "UTC")), pa.int64())
                us = us.to_numpy(zero_copy_only=False)
                secs, nanos = us // 10**6, (us % 10**6) * 1000
                srows, slen = _varints(secs, 0x08)  # google.protobuf.Timestamp: seconds = 1, nanos = 2
                nrows, nlen = _varints(nanos, 0x10)
                stamp = pc.binary_join_element_wise(_binary(srows, np.where(secs != 0, slen, 0)),
                                                    _binary(nrows, np.where(nanos != 0, nlen, 0)), lit(b""))
                pieces += [lit(ts_name), *bulk(n, stamp)]
                command = pc.binary_join_element_wise(*pieces, lit(b""))
                if isinstance(command, pa.ChunkedArray):
                    command = command.combine_chunks()
                offsets = np.frombuffer(command.buffers()[1], dtype=np.int64)[command.offset:command.offset + n + 1]
                data = memoryview(command.buffers()[2])[int(offsets[0]):int(offsets[-1])]
                conn.send_packed_command([data], check_health=False)
                _read_replies(conn, n)
                written += n
        except BaseException:
            conn.disconnect()  # replies may be left unread: never hand this connection back as is
            raise
        finally:
            client.connection_pool.release(conn)
        return written


def _read_replies(conn, n: int) -> None:
    """Read the ``n`` replies of the commands just sent on ``conn``; raise ``redis.ResponseError``
    on the first refused one. Parses with hiredis straight from the socket (redis-py's
    ``read_response`` costs ~10 us a reply in Python), else with redis-py's own parser."""
    import redis

    try:
        import hiredis
    except ImportError:
        for _ in range(n):
            conn.read_response()
        return
    reader, sock, got = hiredis.Reader(), conn._sock, 0
    while got < n:
        reply = reader.gets()
        if reply is False:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise redis.ConnectionError("Redis closed the connection during a bulk write")
            reader.feed(chunk)
        elif isinstance(reply, hiredis.ReplyError):
            raise redis.ResponseError(str(reply))
        else:
            got += 1


BULK_STORES = (GristmillSqliteOnlineStore, GristmillRedisOnlineStore)
