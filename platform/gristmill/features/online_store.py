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

The classes live in :mod:`.online_sqlite` and :mod:`.online_redis`; Feast finds them here.
Name a store in ``feature_store.yaml`` by class path, e.g.
``online_store: {type: gristmill.features.online_store.GristmillSqliteOnlineStore, path: ...}``.
"""

from gristmill.features.online_redis import GristmillRedisOnlineStore, GristmillRedisOnlineStoreConfig
from gristmill.features.online_sqlite import GristmillSqliteOnlineStore, GristmillSqliteOnlineStoreConfig

__all__ = ["BULK_STORES", "GristmillRedisOnlineStore", "GristmillRedisOnlineStoreConfig",
           "GristmillSqliteOnlineStore", "GristmillSqliteOnlineStoreConfig"]

BULK_STORES = (GristmillSqliteOnlineStore, GristmillRedisOnlineStore)
