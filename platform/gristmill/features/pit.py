"""Gristmill's point-in-time join: one DuckDB query of ASOF LEFT JOINs over the views' Parquet sources.

Feast 0.67's DuckDB offline store joins each view with a range join (same key, feature time <= as-of
time) and a ``ROW_NUMBER()`` per label row, then left-joins the views on a text row id: 2.0-2.7x a
hand-written ``ASOF JOIN`` of the same files (docs/benchmarks.md, "Training set"). This module runs
that hand-written join, with Feast's semantics and Feast's own description of the service:

- the views, their features, join keys (projection ``join_key_map`` or the view's entity columns),
  timestamp and created-timestamp fields, field mappings and TTLs come from the objects Feast's
  registry returns, resolved by the same Feast functions ``FeatureStore.get_historical_features``
  calls (``feast.utils._get_features``, ``_get_feature_views_to_use``, ``_group_feature_refs``);
- per label row and view: the latest feature row with ``timestamp <= as-of`` (a later
  ``created_timestamp`` breaks a tie), kept only if ``timestamp + ttl >= as-of`` when the view has
  a TTL (``timedelta(0)``: no expiry, as in Feast);
- the result goes through a Feast :class:`~feast.infra.offline_stores.offline_store.RetrievalJob`,
  so the on-demand views run and the columns are named, ordered and converted exactly as
  ``get_historical_features(...).to_df()`` does it.

:func:`plan` says why a service cannot take this path (a source that is not a local Parquet file,
another offline store, a substrait on-demand view, ...); the caller then uses Feast's own join.
Row order is not defined (as with Feast); callers sort.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from gristmill.features.naming import TIMESTAMP
from gristmill.sql import ident, literal


@dataclass
class ViewJoin:
    """One feature view as the join reads it (every name as the Parquet file spells it)."""

    name: str
    path: str
    timestamp: str
    created: str | None
    keys: dict[str, str]  # source column -> entity_df column
    features: list[tuple[str, str]]  # (source column, output column)
    ttl_seconds: float | None  # None: no expiry


@dataclass
class Plan:
    """The service resolved by Feast: the views to join and what ``to_df()`` needs afterwards."""

    views: list[ViewJoin]
    odfvs: list = field(default_factory=list)
    feature_refs: list[str] = field(default_factory=list)
    full_feature_names: bool = False
    coerce_tz_aware: bool = True  # the repo's ``coerce_tz_aware``: naive datetimes of entity_df are UTC


def plan(store, service, full_feature_names: bool = False) -> Plan | str:
    """The join of ``service`` as Feast resolves it, or the reason it must go to Feast (a string)."""
    from feast import utils
    from feast.feature_view import FeatureView

    offline = getattr(store.config.offline_store, "type", None)
    if offline != "duckdb":
        return f"offline store {offline!r} is not DuckDB"
    refs = utils._get_features(store.registry, store.project, service, allow_cache=True)
    all_fvs, all_odfvs = utils._get_feature_views_to_use(store.registry, store.project, service)
    all_odfvs = copy.deepcopy(all_odfvs)  # as get_historical_features: computed, not read back
    for odfv in all_odfvs:
        odfv.write_to_online_store = False
    fvs, odfvs = utils._group_feature_refs(refs, all_fvs, all_odfvs)
    provider_refs, seen = list(refs), set(refs)  # the implicit inputs of on-demand views, appended
    for view, feats in fvs:
        for feat in feats:
            ref = f"{view.projection.name_to_use()}:{feat}"
            if ref not in seen:
                provider_refs.append(ref)
                seen.add(ref)
    for odfv, _ in odfvs:
        if odfv.mode == "substrait":
            return f"on-demand view {odfv.name!r} is in substrait mode"
    views = []
    for view, _ in fvs:
        if not isinstance(view, FeatureView):
            return f"{view.name!r} is not a batch feature view"
        reason = _unreadable(view)
        if reason:
            return reason
        views.append(_view_join(view, provider_refs, full_feature_names))
    return Plan(views, [o for o, _ in odfvs], provider_refs, full_feature_names,
                bool(getattr(store.config, "coerce_tz_aware", True)))


def _unreadable(view) -> str | None:
    """Why the join cannot read ``view``'s offline source itself (None: it can)."""
    from feast.data_format import ParquetFormat
    from feast.infra.offline_stores.file_source import FileSource

    source = view.batch_source
    if type(source) is not FileSource:
        return f"view {view.name!r}: source {type(source).__name__} is not a file source"
    path = source.path or ""
    fmt = source.file_format
    if not (isinstance(fmt, ParquetFormat) or (fmt is None and path.endswith(".parquet"))):
        return f"view {view.name!r}: source {path!r} is not Parquet"
    if "://" in path:
        return f"view {view.name!r}: source {path!r} is not a local file"
    if getattr(view.projection, "version_tag", None) is not None:
        return f"view {view.name!r}: a version-pinned projection"
    keys = view.projection.join_key_map or {e.name: e.name for e in view.entity_columns}
    if not keys:
        return f"view {view.name!r} has no entity join key"
    return None


def _view_join(view, provider_refs: list[str], full_feature_names: bool) -> ViewJoin:
    """Read off the Feast view what Feast's ``read_fv`` takes from it (ibis.py, Feast 0.67)."""
    source = view.batch_source
    # Feast renames source columns by field_mapping (source name -> feature name) before the join
    to_source = {new: old for old, new in source.field_mapping.items()}
    col = lambda name: to_source.get(name, name)  # noqa: E731
    prefix = view.projection.name_to_use()
    names = [ref.split(":")[1] for ref in provider_refs if ref.startswith(f"{prefix}:")]
    base = view.projection.name_alias or view.name
    out = [f"{base}__{n}" if full_feature_names else n for n in names]
    keys = view.projection.join_key_map or {e.name: e.name for e in view.entity_columns}
    ttl = view.ttl.total_seconds() if view.ttl else None
    return ViewJoin(view.name, source.path, col(source.timestamp_field),
                    col(source.created_timestamp_column) if source.created_timestamp_column else None,
                    {col(k): v for k, v in keys.items()}, [(col(n), o) for n, o in zip(names, out)], ttl)


def join_sql(views: list[ViewJoin], entity: str, columns: list[str], ts: str = TIMESTAMP) -> str:
    """The query: ``entity`` (a relation with ``columns``) ASOF LEFT JOINed with every view."""
    ts_expr = f"CAST(e.{ident(ts)} AS TIMESTAMPTZ)"
    select = [f"e.{ident(c)}" for c in columns]
    joins = []
    for i, v in enumerate(views):
        alias = f"v{i}"
        inner = [f"{ident(src)} AS {ident(f'__gm_k{j}')}" for j, src in enumerate(v.keys)]
        inner.append(f"CAST({ident(v.timestamp)} AS TIMESTAMPTZ) AS __gm_ts")
        inner += [f"{ident(src)} AS {ident(f'__gm_f{j}')}" for j, (src, _) in enumerate(v.features)]
        sub = f"SELECT {', '.join(inner)} FROM read_parquet({literal(v.path)})"
        if v.created:  # a later-written row wins a tie on the timestamp, as in Feast's ORDER BY
            part = ", ".join([ident(k) for k in v.keys] + [f"CAST({ident(v.timestamp)} AS TIMESTAMPTZ)"])
            sub += (f" QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY "
                    f"CAST({ident(v.created)} AS TIMESTAMPTZ) DESC NULLS LAST) = 1")
        on = [f"e.{ident(ent)} = {alias}.{ident(f'__gm_k{j}')}" for j, ent in enumerate(v.keys.values())]
        on.append(f"{ts_expr} >= {alias}.__gm_ts")
        joins.append(f"ASOF LEFT JOIN ({sub}) {alias} ON {' AND '.join(on)}")
        fresh = (f"{alias}.__gm_ts + to_microseconds({round(v.ttl_seconds * 1e6)}) >= {ts_expr}"
                 if v.ttl_seconds else None)
        for j, (_, name) in enumerate(v.features):
            value = f"{alias}.{ident(f'__gm_f{j}')}"
            select.append(f"CASE WHEN {fresh} THEN {value} END AS {ident(name)}" if fresh
                          else f"{value} AS {ident(name)}")
    return f"SELECT {', '.join(select)}\nFROM {entity} e\n" + "\n".join(joins)


def _job_class():
    from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata

    class GristmillRetrievalJob(RetrievalJob):
        """The join's Arrow table as a Feast retrieval job: Feast's ``to_df``/``to_arrow`` add the
        on-demand features and convert, exactly as for its own jobs."""

        def __init__(self, table, odfvs, full_feature_names, features):
            super().__init__()
            self._table, self._odfvs, self._full = table, odfvs, full_feature_names
            self._metadata = RetrievalMetadata(features=features, keys=[])

        def _to_df_internal(self, timeout=None):
            return self._table.to_pandas()

        def _to_arrow_internal(self, timeout=None):
            return self._table

        @property
        def full_feature_names(self):
            return self._full

        @property
        def on_demand_feature_views(self):
            return self._odfvs

        @property
        def metadata(self):
            return self._metadata

        def persist(self, storage, allow_overwrite=False, timeout=None):
            raise NotImplementedError("a Gristmill point-in-time join is not persisted through Feast")

    return GristmillRetrievalJob


def retrieve(the_plan: Plan, entity_df):
    """Run the join of ``the_plan`` over ``entity_df`` (pandas, with ``event_timestamp``); a Feast
    retrieval job (``.to_df()``, ``.to_arrow()``)."""
    import duckdb
    import pyarrow as pa
    from feast import utils
    from feast.errors import RequestDataNotFoundInEntityDfException

    if the_plan.coerce_tz_aware:  # as get_historical_features does before its offline store
        entity_df = utils.make_df_tzaware(entity_df)
    for odfv in the_plan.odfvs:
        for name in odfv.get_request_data_schema():
            if name not in entity_df.columns:
                raise RequestDataNotFoundInEntityDfException(feature_name=name, feature_view_name=odfv.name)
    entity = pa.Table.from_pandas(entity_df, preserve_index=False)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # naive feature timestamps are UTC, as in Feast's ibis
        con.register("__gm_entity", entity)
        table = con.sql(join_sql(the_plan.views, "__gm_entity", entity.column_names)).to_arrow_table()
    finally:
        con.close()
    # entity columns come back as they went in (DuckDB would turn ns timestamps into us)
    table = pa.Table.from_arrays([table.column(i).cast(entity.schema.field(i).type)
                                  if i < entity.num_columns else table.column(i)
                                  for i in range(table.num_columns)], names=table.column_names)
    return _job_class()(table, the_plan.odfvs, the_plan.full_feature_names, the_plan.feature_refs)
