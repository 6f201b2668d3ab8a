"""Gristmill's SQLite online store: one packed row per entity and view (see
:mod:`gristmill.features.online_store`)."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Literal

from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig

from gristmill.features.naming import SQLITE_STORE_TYPE as SQLITE_TYPE
from gristmill.features.online_codec import CHUNK, encodable, feast_kind, sorted_by_key
from gristmill.features.online_lookup import respond

log = logging.getLogger("gristmill.features.online_store")

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


@functools.lru_cache(maxsize=4096)  # every lookup asks for its views' current layouts
def layout_of(names: tuple[str, ...]) -> tuple[int, str]:
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
        return encodable(table) and self.packs(config)

    def _get_conn(self, config):
        """Feast's connection, reading the file through mmap (set once per connection)."""
        fresh = self._conn is None
        conn = super()._get_conn(config)
        if fresh:
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return conn

    def _known(self) -> set:
        """``(connection id, table)`` of the tables known to exist (checked once per connection)."""
        return self.__dict__.setdefault("_gm_ready", set())

    def _ensure(self, conn, name: str) -> None:
        """Create the packed table ``name`` and the layouts table if missing (once per connection)."""
        ready = self._known()
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
        known = self._known()
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

        from feast.protos.feast.types.Value_pb2 import RepeatedValue, Value

        layouts: dict[tuple, tuple[int, str]] = {}

        def packed(rows):
            for key, group in itertools.groupby(rows, key=lambda r: r[0]):
                group = list(group)
                names = tuple(r[1] for r in group)
                if names not in layouts:
                    layouts[names] = layout_of(names)
                secs, made = group[0][3], group[0][4]
                yield (key, layouts[names][0], None if secs is None else secs * 10**6,
                       None if made is None else made * 10**6,
                       RepeatedValue(val=[Value.FromString(r[2] or b"") for r in group]).SerializeToString())

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
        self._known().discard((id(conn), legacy))
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
                self._known().discard((id(conn), name))
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
        layout = layout_of(tuple(f.name for f in features))
        frame = sorted_by_key(frame, join_key)  # key order: B-tree appends, not random inserts
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
        layout = layout_of(tuple(names))
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
        current = [layout_of(tuple(sorted(f.name for f in table.features))) for table, _ in wanted]
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
        return self.read_rows(config, [(table, requested_features, entity_keys)])[0]

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
        respond(self, config, grouped_refs, join_key_values, entity_name_to_join_key_map,
                 online_features_response, full_feature_names, include_feature_view_version_metadata)
