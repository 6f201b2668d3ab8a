"""Gristmill's online stores: Feast's SQLite and Redis stores, written in bulk and read in one trip.

Feast's own writers build a protobuf per value and issue a statement per value (SQLite) or a
command assembled in Python per entity (Redis): about 2 ms per entity of 50 features. Both stores
here add :meth:`write_latest`, which takes an Arrow table of each entity's latest row and encodes
it a column at a time (:mod:`gristmill.features.online_codec`, the same value bytes as Feast's).

- **Redis** keeps Feast's layout (a hash per entity, a field per feature), so Feast's own reads and
  writers work on it unchanged: one ``HSET`` of all the view's fields per entity, the RESP commands
  built by pyarrow and sent in chunks on one connection.
- **SQLite** keeps **one row per entity and view** (``<feast table>__packed``: the entity key, the
  event and created times in microseconds, and the view's values as one serialized
  ``feast.types.RepeatedValue`` in the order of a *layout*: the view's feature names, kept in
  :data:`LAYOUTS` under a digest of them). Feast's layout is a row per entity *and feature*, three
  B-trees per row: 50 M rows for 1 M entities of 50 features, which Python's ``sqlite3`` writes at
  5-7 us a row. This class implements every path Feast takes through an online store (``update``
  on ``feast apply``, ``online_write_batch`` for ``feast materialize`` and ``write_to_online_store``,
  ``online_read`` and the lookup of ``get_online_features`` / ``feast serve``), so the stores stay
  Feast's to use; only Feast's *built-in* ``type: sqlite`` class cannot read these tables.
  Rows written before a view gained or lost features keep their layout and read back as written.
  A view's rows left in Feast's layout are moved into packed rows at first use (:meth:`_migrate`).
  With ``vector_enabled`` or ``enable_openai_compatible_store`` it is Feast's own store, as is.

Unlike Feast's Redis writer, :meth:`write_latest` does not skip a row whose event time is not newer
than the stored one: Gristmill computes each entity's latest row over the whole offline history, so
a correction at the same instant (a later ``created_timestamp``) must replace what is stored.

Name a store in ``feature_store.yaml`` by class path, e.g.
``online_store: {type: gristmill.features.online_store.GristmillSqliteOnlineStore, path: ...}``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Literal

from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig

from gristmill.features.naming import REDIS_STORE_TYPE as REDIS_TYPE  # noqa: E402
from gristmill.features.naming import SQLITE_STORE_TYPE as SQLITE_TYPE  # noqa: E402

log = logging.getLogger(__name__)

#: entities encoded and sent at a time: bounds memory (~60 MB a chunk of 10 features) and the
#: replies Redis buffers
CHUNK = 50_000
SQLITE_CACHE_KIB = 262_144  # page cache of the bulk write
LAYOUTS = "gristmill_online_layouts"  # layout digest -> the JSON list of a view's feature names
PACKED = "__packed"  # suffix of a view's one-row-per-entity table, after Feast's table name
#: bytes of the database file SQLite reads through mmap instead of read() into its page cache (it
#: caps this at its build's limit, 2 GiB here): a lookup of 100 entities x 5 views 10 -> 3 ms
MMAP_BYTES = 1 << 40
MAX_PARAMS = 30_000  # bound variables per SQLite statement (SQLite's limit: 32,766)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


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


def _sorted_by_key(frame, join_key: str):
    """``frame`` with its entity keys serialized (column ``__ek``), sorted by them."""
    import pyarrow.compute as pc

    from gristmill.features.online_codec import entity_keys

    frame = frame.append_column("__ek", entity_keys(frame.column(join_key), join_key))
    return frame.take(pc.sort_indices(frame, [("__ek", "ascending")]))


def _encodable(table) -> bool:
    from gristmill.features.online_codec import KINDS

    return all(str(f.dtype) in KINDS for f in table.features)


def layout_of(names: list[str]) -> tuple[int, str]:
    """A view's layout: a signed 64-bit digest of its ordered feature names, and their JSON."""
    text = json.dumps(list(names))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True), text


def _micros(column) -> list:
    """Microseconds since the epoch (UTC) of an Arrow timestamp column; nulls stay None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(pc.cast(column, pa.timestamp("us", "UTC")), pa.int64()).to_pylist()


def _micros_of(stamp: datetime | None) -> int | None:
    """Microseconds since the epoch of ``stamp`` (naive: UTC, as Feast's writers take it)."""
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return (stamp - EPOCH) // timedelta(microseconds=1)


def _quote(name: str) -> str:
    from feast.infra.online_stores.sqlite import _quote_id

    return _quote_id(name)


class GristmillSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store keeping one row per entity and view (see the module's text)."""

    @staticmethod
    def packs(config) -> bool:
        """Whether this store keeps Gristmill's packed rows (else it is Feast's store, as is)."""
        store = config.online_store
        return not getattr(store, "enable_openai_compatible_store", False) and not store.vector_enabled

    @staticmethod
    def packed_table(config, table) -> str:
        """The name of ``table``'s one-row-per-entity table."""
        from feast.infra.online_stores.sqlite import _table_id

        return _table_id(config.project, table, config.registry.enable_online_feature_view_versioning) + PACKED

    def bulk_ready(self, config, table) -> bool:
        """Whether :meth:`write_latest` can write ``table`` (else Feast's own writer must)."""
        return _encodable(table) and self.packs(config)

    def _get_conn(self, config):
        """Feast's connection, reading the file through mmap (set once per connection)."""
        fresh = self._conn is None
        conn = super()._get_conn(config)
        if fresh:
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return conn

    def _ensure(self, conn, name: str) -> None:
        """Create the packed table ``name`` and the layouts table if missing (once per connection)."""
        ready = self.__dict__.setdefault("_gm_ready", set())
        if (id(conn), name) in ready:
            return
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_quote(name)} (entity_key BLOB PRIMARY KEY, "
                     "layout INTEGER NOT NULL, event_ts INTEGER, created_ts INTEGER, vals BLOB NOT NULL) "
                     "WITHOUT ROWID")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {LAYOUTS} (layout INTEGER PRIMARY KEY, names TEXT NOT NULL)")
        ready.add((id(conn), name))

    def _upsert(self, conn, name: str, rows, layout: tuple[int, str]) -> None:
        """Write ``rows`` (entity key, layout, event us, created us, values) into the packed table
        ``name``; the caller holds the transaction."""
        self._ensure(conn, name)
        conn.execute(f"INSERT OR IGNORE INTO {LAYOUTS} (layout, names) VALUES (?, ?)", layout)
        conn.executemany(
            f"INSERT INTO {_quote(name)} (entity_key, layout, event_ts, created_ts, vals) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(entity_key) DO UPDATE SET layout = excluded.layout, "
            "event_ts = excluded.event_ts, created_ts = excluded.created_ts, vals = excluded.vals", rows)

    def _stored(self, conn, names: list[str]) -> set[str]:
        """Which of the tables ``names`` exist (a read creates nothing)."""
        known = self.__dict__.setdefault("_gm_ready", set())
        missing = [n for n in names if (id(conn), n) not in known]
        if missing:
            marks = ",".join("?" * len(missing))
            for (n,) in conn.execute(f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})",
                                     missing):
                known.add((id(conn), n))
        return {n for n in names if (id(conn), n) in known}

    def _prepared(self, conn, config, tables, create: bool) -> set[str]:
        """The packed tables of ``tables`` that exist, after moving any view's rows still in Feast's
        row-per-feature layout (an earlier release's, or Feast's own store's) into packed rows, and,
        with ``create``, creating the missing ones."""
        from feast.infra.online_stores.sqlite import _table_id

        names = [self.packed_table(config, table) for table in tables]
        stored = self._stored(conn, names)
        versioning = config.registry.enable_online_feature_view_versioning
        for table, name in zip(tables, names):
            if name in stored:
                continue
            legacy = _table_id(config.project, table, versioning)
            if self._stored(conn, [legacy]):
                self._migrate(conn, name, legacy)
                stored.add(name)
            elif create:
                self._ensure(conn, name)
                stored.add(name)
        return stored

    def _migrate(self, conn, name: str, legacy: str) -> None:
        """Move the rows of ``legacy`` (Feast's layout: a row per entity and feature) into the packed
        table ``name``, one row per entity with the features it held, and drop ``legacy``."""
        import itertools

        def varint(n: int) -> bytes:
            out = bytearray()
            while n > 0x7F:
                out.append((n & 0x7F) | 0x80)
                n >>= 7
            out.append(n)
            return bytes(out)

        layouts: dict[tuple, tuple[int, str]] = {}

        def packed(rows):
            for key, group in itertools.groupby(rows, key=lambda r: r[0]):
                group = list(group)
                names = tuple(r[1] for r in group)
                layout = layouts.get(names) or layouts.setdefault(names, layout_of(list(names)))
                secs, made = group[0][3], group[0][4]
                yield (key, layout[0], None if secs is None else secs * 10**6,
                       None if made is None else made * 10**6,
                       b"".join(b"\n" + varint(len(r[2] or b"")) + (r[2] or b"") for r in group))

        with conn:
            self._ensure(conn, name)
            source = conn.execute(f"SELECT entity_key, feature_name, value, CAST(event_ts AS INTEGER), "
                                  f"CAST(created_ts AS INTEGER) FROM {_quote(legacy)} "
                                  "ORDER BY entity_key, feature_name")
            before = conn.total_changes
            conn.executemany(f"INSERT OR REPLACE INTO {_quote(name)} (entity_key, layout, event_ts, created_ts, vals) "
                             "VALUES (?, ?, ?, ?, ?)", packed(source))
            moved = conn.total_changes - before
            conn.executemany(f"INSERT OR IGNORE INTO {LAYOUTS} (layout, names) VALUES (?, ?)", layouts.values())
            conn.execute(f"DROP TABLE {_quote(legacy)}")
        self.__dict__.setdefault("_gm_ready", set()).discard((id(conn), legacy))
        log.warning("moved %d entities of %s (Feast's row-per-feature layout) into %s (one row per entity)",
                    moved, legacy, name)

    def update(self, config, tables_to_delete, tables_to_keep, entities_to_delete, entities_to_keep,
               partial: bool):
        """``feast apply``: a packed table per kept view (rows a view still holds in Feast's layout
        are moved into it); a deleted view's tables dropped."""
        if not self.packs(config):
            return super().update(config, tables_to_delete, tables_to_keep, entities_to_delete,
                                  entities_to_keep, partial)
        from feast.infra.online_stores.sqlite import _table_id

        conn = self._get_conn(config)
        versioning = config.registry.enable_online_feature_view_versioning
        self._prepared(conn, config, list(tables_to_keep), create=True)
        with conn:
            for table in tables_to_delete:
                name = self.packed_table(config, table)
                conn.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
                self.__dict__.get("_gm_ready", set()).discard((id(conn), name))
                conn.execute(f"DROP TABLE IF EXISTS {_quote(_table_id(config.project, table, versioning))}")

    def write_latest(self, config, table, frame, join_key: str, created: str | None = None) -> int:
        """Upsert every row of the Arrow table ``frame`` (one row per entity: ``join_key``, the
        view's timestamp field, its features) into the view's packed table; returns the rows written."""
        from gristmill.features.online_codec import packed_values, value_bytes

        if not self.bulk_ready(config, table):
            raise ValueError("the bulk writer writes Int64, Float64, String, Bool and UnixTimestamp features "
                             "to Gristmill's packed SQLite layout: turn off vector_enabled and "
                             "enable_openai_compatible_store, or use Feast's writer")
        conn = self._get_conn(config)
        features = sorted(table.features, key=lambda f: f.name)
        kinds = [feast_kind(f.dtype) for f in features]
        layout = layout_of([f.name for f in features])
        frame = _sorted_by_key(frame, join_key)  # key order: B-tree appends, not random inserts
        ts_field = table.batch_source.timestamp_field
        name = self.packed_table(config, table)
        self._prepared(conn, config, [table], create=True)
        conn.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        with conn:  # one transaction per view
            for start in range(0, frame.num_rows, CHUNK):
                part = frame.slice(start, CHUNK)
                n = part.num_rows
                vals = packed_values([value_bytes(part.column(f.name), kind) for f, kind in zip(features, kinds)])
                made = _micros(part.column(created)) if created else [None] * n
                self._upsert(conn, name, zip(part.column("__ek").to_pylist(), [layout[0]] * n,
                                             _micros(part.column(ts_field)), made, vals.to_pylist()), layout)
        return frame.num_rows

    def online_write_batch(self, config, table, data, progress) -> None:
        """Feast's writer (``feast materialize``, ``write_to_online_store``) into the packed rows."""
        if not self.packs(config):
            return super().online_write_batch(config, table, data, progress)
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.Value_pb2 import RepeatedValue, Value

        names = sorted(f.name for f in table.features)
        layout = layout_of(names)
        empty, version = Value(), config.entity_key_serialization_version
        rows = [(serialize_entity_key(key, entity_key_serialization_version=version), layout[0],
                 _micros_of(ts), _micros_of(made),
                 RepeatedValue(val=[values.get(n, empty) for n in names]).SerializeToString())
                for key, values, ts, made in data]
        conn = self._get_conn(config)
        self._prepared(conn, config, [table], create=True)
        with conn:
            self._upsert(conn, self.packed_table(config, table), rows, layout)
        if progress:
            progress(len(rows))

    def _fetch(self, config, wanted: list) -> list[dict]:
        """For each ``(view, serialized keys)`` of ``wanted``, ``{key: (event time, {feature: Value})}``
        of the keys stored, read in as few statements as SQLite's bound-variable limit allows."""
        from feast.protos.feast.types.Value_pb2 import RepeatedValue

        conn = self._get_conn(config)
        found: list[dict] = [{} for _ in wanted]
        queries, parts, params = [], [], []
        tables = [self.packed_table(config, table) for table, _ in wanted]
        stored = self._prepared(conn, config, [table for table, _ in wanted], create=False)
        for n, ((table, keys), name) in enumerate(zip(wanted, tables)):
            if name not in stored:  # never applied nor written: nothing stored
                continue
            for i in range(0, len(keys), MAX_PARAMS):
                chunk = keys[i:i + MAX_PARAMS]
                if params and len(params) + len(chunk) > MAX_PARAMS:
                    queries.append((parts, params))
                    parts, params = [], []
                parts.append(f"SELECT {n}, entity_key, layout, event_ts, vals FROM {_quote(name)} "
                             f"WHERE entity_key IN ({','.join('?' * len(chunk))})")
                params += chunk
        if parts:
            queries.append((parts, params))
        current = [layout_of(sorted(f.name for f in table.features)) for table, _ in wanted]
        names = {code: json.loads(text) for code, text in current}
        lost: dict[int, int] = {}
        for parts_, params_ in queries:
            for n, key, layout, ts, blob in conn.execute(" UNION ALL ".join(parts_), params_):
                order = names.get(layout)
                if order is None:
                    order = names[layout] = self._layout_names(conn, layout)
                if order is None:
                    lost[n] = lost.get(n, 0) + 1
                    continue
                stamp = None if ts is None else EPOCH + timedelta(microseconds=ts)
                found[n][key] = (stamp, dict(zip(order, RepeatedValue.FromString(blob).val)))
        for n, count in lost.items():
            log.warning("%d online rows of view %s name a layout %s lacks: read as missing; materialize "
                        "writes them again", count, wanted[n][0].name, LAYOUTS)
        return found

    @staticmethod
    def _layout_names(conn, layout: int) -> list[str] | None:
        row = conn.execute(f"SELECT names FROM {LAYOUTS} WHERE layout = ?", (layout,)).fetchone()
        return None if row is None else json.loads(row[0])

    def online_read(self, config, table, entity_keys, requested_features=None):
        """Feast's per-view read, from the packed rows."""
        if not self.packs(config):
            return super().online_read(config, table, entity_keys, requested_features)
        from feast.infra.key_encoding_utils import serialize_entity_key

        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(k, entity_key_serialization_version=version) for k in entity_keys]
        rows = self._fetch(config, [(table, keys)])[0]
        return [rows.get(k, (None, None)) for k in keys]

    def read_rows(self, config, wanted: list) -> list[list]:
        """For each ``(view, requested features, entity key protos)`` of ``wanted``, what
        :meth:`online_read` answers, every view read in one SQL query (a UNION ALL)."""
        if not self.packs(config):
            return [self.online_read(config, table, keys, requested) for table, requested, keys in wanted]
        from feast.infra.key_encoding_utils import serialize_entity_key

        version = config.entity_key_serialization_version
        serialized = [[serialize_entity_key(k, entity_key_serialization_version=version) for k in keys]
                      for _, _, keys in wanted]
        found = self._fetch(config, [(table, keys) for (table, _, _), keys in zip(wanted, serialized)])
        return [[rows.get(k, (None, None)) for k in keys] for rows, keys in zip(found, serialized)]

    def _read_features_per_fv(self, config, grouped_refs, join_key_values, entity_name_to_join_key_map,
                              online_features_response, full_feature_names: bool,
                              include_feature_view_version_metadata: bool) -> None:
        """Feast's lookup (``get_online_features``, ``feast serve``): all views in one read."""
        _respond(self, config, grouped_refs, join_key_values, entity_name_to_join_key_map,
                 online_features_response, full_feature_names, include_feature_view_version_metadata)


def read_plan(online, config, grouped_refs, join_key_values, entity_name_to_join_key_map) -> list:
    """Feast's steps from a request's views to the rows read: per view ``(view, requested, output
    positions of each unique entity, output length, what read_rows answered for them)``."""
    from feast import utils

    plans = []
    for table, requested in grouped_refs:
        values, idxs, output_len = utils._get_unique_entities(table, join_key_values, entity_name_to_join_key_map)
        plans.append((table, requested, idxs, output_len, utils._get_entity_key_protos(values)))
    if not plans:
        return []
    read = online.read_rows(config, [(table, requested, keys) for table, requested, _, _, keys in plans])
    return [(table, requested, idxs, output_len, rows) for (table, requested, idxs, output_len, _), rows
            in zip(plans, read)]


def _respond(online, config, grouped_refs, join_key_values, entity_name_to_join_key_map, response,
             full_feature_names: bool, include_version_metadata: bool) -> None:
    """Fill Feast's online response from one :meth:`read_rows` of every view of the request."""
    from feast import utils

    for table, requested, idxs, output_len, rows in read_plan(online, config, grouped_refs, join_key_values,
                                                              entity_name_to_join_key_map):
        utils._populate_response_from_feature_data(requested, rows, idxs, response, full_feature_names, table,
                                                   output_len, include_version_metadata)


class GristmillRedisOnlineStore(RedisOnlineStore):
    """Feast's Redis online store with a bulk writer (reads: Feast's, one pipeline for all views)."""

    def read_rows(self, config, wanted: list) -> list[list]:
        """For each ``(view, requested features, entity key protos)`` of ``wanted``, what
        :meth:`online_read` answers, every view's ``HMGET``s in one pipeline (Feast's own steps)."""
        from feast.infra.online_stores.redis import _versioned_fv_name

        items, commands = [], []
        for table, requested, keys in wanted:
            fv = _versioned_fv_name(table, config)
            names, fields = self._generate_hset_keys_for_features(table, list(requested), fv_name_override=fv)
            redis_keys = self._generate_redis_keys_for_entities(config, keys)
            items.append((fv, names, len(redis_keys)))
            commands += [(key, fields) for key in redis_keys]
        replies = self._read_hash_fields(config, commands) if commands else []
        out, at = [], 0
        for fv, names, n in items:
            out.append(self._convert_redis_values_to_protobuf(replies[at:at + n], fv, names))
            at += n
        return out

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
