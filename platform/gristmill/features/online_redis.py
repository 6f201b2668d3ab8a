"""Gristmill's Redis online store: Feast's layout, written in bulk (see
:mod:`gristmill.features.online_store`)."""

from __future__ import annotations

from typing import Literal

from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig

from gristmill.features.naming import REDIS_STORE_TYPE as REDIS_TYPE
from gristmill.features.online_codec import CHUNK, encodable, feast_kind


class GristmillRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """Feast's Redis online store configuration (``connection_string`` ...), under Gristmill's class."""

    type: Literal["gristmill.features.online_store.GristmillRedisOnlineStore"] = REDIS_TYPE  # type: ignore[assignment]


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
        return encodable(table) and store.redis_type == RedisType.redis and not store.key_ttl_seconds

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


