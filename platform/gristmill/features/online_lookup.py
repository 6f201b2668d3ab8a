"""The bento's online lookup: a feature service's values for entity ids, without Feast's per-value
response.

``store.get_online_features(...).to_dict()`` builds a protobuf ``FeatureVector`` per feature (a
copy of every value), then converts every value back to Python in ``to_dict``: for 100 entities of
50 features that is ~28 ms of a ~36 ms lookup. :func:`lookup` takes Feast's own steps up to the read
(``_prepare_entities_to_read_from_online_store``: the service's views, projections, join keys and
the entity rows; ``_get_unique_entities``), reads every view in one round trip through the online
store's :meth:`read_rows`, and converts each stored value once, as ``feast_value_type_to_python_type``
does. The answer equals ``to_dict()``'s (the tests hold them equal for every
type, nulls, unknown and repeated ids, on SQLite and Redis).

Feast's path is taken instead (and its answer returned) when the service has on-demand views
(their transformations run on Feast's response), reads a versioned view or pre-computed vectors,
or the online store is not one of Gristmill's (no ``read_rows``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

#: the ``feast.types.Value`` fields read back as they are (Feast's conversion returns the attribute)
PLAIN = frozenset({"int64_val", "double_val", "string_val", "bool_val", "int32_val", "float_val", "bytes_val"})


def python_value(value) -> Any:
    """``feast_value_type_to_python_type`` of one ``feast.types.Value`` (a fast path for scalars)."""
    kind = value.WhichOneof("val")
    if kind is None:
        return None
    if kind in PLAIN:
        return getattr(value, kind)
    if kind == "unix_timestamp_val":
        from feast.type_map import NULL_TIMESTAMP_INT_VALUE

        seconds = value.unix_timestamp_val
        return None if seconds == NULL_TIMESTAMP_INT_VALUE else datetime.fromtimestamp(seconds, tz=timezone.utc)
    from feast.type_map import feast_value_type_to_python_type

    return feast_value_type_to_python_type(value)


def lookup(store, service, rows: dict[str, list]) -> dict[str, list]:
    """The values of ``service``'s features for the entity rows ``rows`` (columns: the join key's
    ids, request-data columns), as ``get_online_features(service, rows).to_dict()`` gives them."""
    from feast import utils

    online = store._get_provider().online_store
    if not hasattr(online, "read_rows") or getattr(service, "precompute_online", False):
        return store.get_online_features(features=service, entity_rows=rows).to_dict()
    (join_key_values, grouped_refs, entity_name_to_join_key_map, on_demand, _refs, wanted_names,
     response) = utils._prepare_entities_to_read_from_online_store(
        registry=store.registry, project=store.project, features=service, entity_values=rows,
        full_feature_names=False, native_entity_values=True)
    if on_demand or any(getattr(t.projection, "version_tag", None) is not None for t, _ in grouped_refs):
        return store.get_online_features(features=service, entity_rows=rows).to_dict()
    out: dict[str, list] = {  # the entity columns Feast's answer keeps (request data it drops)
        name: [python_value(v) for v in vector.values]
        for name, vector in zip(response.metadata.feature_names.val, response.results) if name in wanted_names}
    for _table, requested, idxs, output_len, found in read_plan(online, store.config, grouped_refs, join_key_values,
                                                                entity_name_to_join_key_map):
        columns = {name: [None] * output_len for name in requested}
        for (_, data), destinations in zip(found, idxs):
            if not data:
                continue
            for name, column in columns.items():
                value = data.get(name)
                if value is not None:
                    converted = python_value(value)
                    for d in destinations:
                        column[d] = converted
        out.update(columns)
    return out


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


def respond(online, config, grouped_refs, join_key_values, entity_name_to_join_key_map, response,
             full_feature_names: bool, include_version_metadata: bool) -> None:
    """Fill Feast's online response from one :meth:`read_rows` of every view of the request."""
    from feast import utils

    for table, requested, idxs, output_len, rows in read_plan(online, config, grouped_refs, join_key_values,
                                                              entity_name_to_join_key_map):
        utils._populate_response_from_feature_data(requested, rows, idxs, response, full_feature_names, table,
                                                   output_len, include_version_metadata)
