"""Feature tables: typed, keyed, time-stamped Parquet built from a project's ingested tables.

Each ``features:`` entry of the spec becomes ``lake/<project>/_features/<table>.parquet`` with the
entity key (as text), ``event_timestamp`` (UTC) and feature columns named ``<table>__<column>``:

- ``snapshot`` tables keep their columns as they are (dates and timestamps as UTC timestamps, Feast's
  ``UnixTimestamp``, which the model expands into calendar parts); with
  ``created``, a ``created_timestamp`` column lets a later-written row correct an earlier one;
- ``events`` tables become aggregates per entity as step functions of time: all-time count, sum,
  mean and last value of each numeric column and a count per value of each low-cardinality text
  column; per window (``windows``, default 7/30/90 days) the count and the sum, mean, min and max
  of each numeric column; and the time of the last event (for the on-demand "days since last
  event"). The value at time t uses only events stamped at or before t, and expiry rows make the
  windowed values exact between events too, so point-in-time joins never leak later events.

A manifest (``_manifest.json``) lists every feature with its Feast type for the definitions writer.
A table reused from another project (``project:`` in the spec) is not built here: the manifest
points at the owner's table, and the definitions import the owner's feature view.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gristmill.errors import DataError
from gristmill.features.naming import CREATED, STATIC_TIME, TIMESTAMP, feature_name, snake
from gristmill.spec import FeatureTableSpec, ProjectSpec
from gristmill.catalog import lake_reader
from gristmill.sql import ident, literal, qualified
from gristmill.workspace import Workspace

MAX_CATEGORY_LEVELS = 12
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
           "UBIGINT", "FLOAT", "DOUBLE", "REAL")
TEMPORAL = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")
INTERNAL_COLUMNS = {"_source_file", "_row_number", "_ingest_run"}


@dataclass
class FeatureColumn:
    name: str
    dtype: str  # Feast type name: Float64, Int64, String, Bool, UnixTimestamp


@dataclass
class FeatureTable:
    table: str
    path: str
    ttl_days: int | None
    features: list[FeatureColumn] = field(default_factory=list)
    owner: str = ""  # the project that builds and applies it (this one when empty)
    created: bool = False  # has a created_timestamp column (corrections)
    windows: list[int] = field(default_factory=list)  # event tables: the windows in days
    events: bool = False


@dataclass
class Manifest:
    project: str
    entity: str
    key: str
    tables: list[FeatureTable]
    labels_path: str
    target: str
    #: label rows left out of every training set, by reason: ``pending`` (no target yet: empty,
    #: blank or NaN), ``no_key``, ``no_timestamp``; each row is counted once, first reason first
    labels_left_out: dict[str, int] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        raw = json.loads(path.read_text())
        tables = [FeatureTable(**{**t, "features": [FeatureColumn(**f) for f in t["features"]]})
                  for t in raw.pop("tables")]
        return cls(tables=tables, **raw)


def features_dir(ws: Workspace, project: str) -> Path:
    return ws.lake(project) / "_features"


def manifest_path(ws: Workspace, project: str) -> Path:
    return features_dir(ws, project) / "_manifest.json"


def _columns(con, project: str, table: str, where: str, available: list[str]) -> dict[str, str]:
    if table not in available:
        shown = ", ".join(available) or "none: run `gristmill ingest` first"
        raise DataError(f"{where}: no table {table!r} in project {project!r} (tables: {shown})")
    rows = con.execute(f"DESCRIBE {qualified(project, table)}").fetchall()
    return {r[0]: r[1] for r in rows}


def _require(column: str | None, columns: dict[str, str], where: str, table: str) -> None:
    if column is not None and column not in columns:
        raise DataError(f"{where}: table {table!r} has no column {column!r} "
                        f"(columns: {', '.join(columns)})")


def _time_expr(column: str | None, dtype: str | None, where: str) -> str:
    if column is None:
        return f"TIMESTAMPTZ {literal(STATIC_TIME + '+00')}"
    if dtype is None or not any(dtype.startswith(t) for t in TEMPORAL):
        raise DataError(f"{where}: column {column!r} is {dtype}, not a date or timestamp")
    return f"CAST(CAST({ident(column)} AS TIMESTAMP) AS TIMESTAMPTZ)"


def _feast_type(dtype: str) -> str:
    if dtype in ("FLOAT", "DOUBLE", "REAL") or dtype.startswith("DECIMAL"):
        return "Float64"
    if dtype in NUMERIC:
        return "Int64"
    if dtype == "BOOLEAN":
        return "Bool"
    return "String"


def _snapshot_select(spec: FeatureTableSpec, columns: dict[str, str], key: str, entity_key: str,
                     time_sql: str) -> tuple[str, list[FeatureColumn]]:
    picks, features = [], []
    if spec.created:
        picks.append(f"{_time_expr(spec.created, columns.get(spec.created), 'created')} AS {CREATED}")
    skip = {key, spec.timestamp, spec.created} | INTERNAL_COLUMNS
    for col in spec.columns or [c for c in columns if c not in skip]:
        name, dtype = feature_name(spec.table, col), columns[col]
        if any(dtype.startswith(t) for t in TEMPORAL):
            # a date stays a date (UTC, microseconds): the model expands it (training.dates)
            picks.append(f"CAST(CAST({ident(col)} AS TIMESTAMP) AS TIMESTAMPTZ) AS {ident(name)}")
            features.append(FeatureColumn(name, "UnixTimestamp"))
        elif dtype in NUMERIC or dtype.startswith("DECIMAL"):
            feast = _feast_type(dtype)
            cast = "DOUBLE" if feast == "Float64" else "BIGINT"
            picks.append(f"CAST({ident(col)} AS {cast}) AS {ident(name)}")
            features.append(FeatureColumn(name, feast))
        elif dtype == "BOOLEAN":
            picks.append(f"CAST({ident(col)} AS BIGINT) AS {ident(name)}")
            features.append(FeatureColumn(name, "Int64"))
        else:
            picks.append(f"CAST({ident(col)} AS VARCHAR) AS {ident(name)}")
            features.append(FeatureColumn(name, "String"))
    select = ", ".join([f"CAST({ident(key)} AS VARCHAR) AS {ident(entity_key)}",
                        f"{time_sql} AS {TIMESTAMP}", *picks])
    return select, features


def _events_select(con, project: str, spec: FeatureTableSpec, columns: dict[str, str], key: str,
                   entity_key: str, time_sql: str) -> tuple[str, list[FeatureColumn]]:
    """Aggregates of an event table as step functions of time, exact at every instant.

    Each event also leaves an "expiry" row just after it drops out of each window (t + w days),
    so the aggregates change exactly when an event leaves a window, not only when a new event
    arrives; a point-in-time join then reads the right value at any as-of time.
    """
    table, windows = spec.table, sorted(set(spec.windows))
    numeric, levels = [], {}
    for col in spec.columns or [c for c in columns if c not in {key, spec.timestamp} | INTERNAL_COLUMNS]:
        dtype = columns[col]
        if dtype in NUMERIC or dtype.startswith("DECIMAL") or dtype == "BOOLEAN":
            numeric.append(col)
        elif dtype == "VARCHAR":
            found = [r[0] for r in con.execute(
                f"SELECT {ident(col)} FROM {qualified(project, table)} WHERE {ident(col)} IS NOT NULL "
                f"GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT {MAX_CATEGORY_LEVELS + 1}").fetchall()]
            if found and len(found) <= MAX_CATEGORY_LEVELS:  # else free text or ids: no per-value counts
                levels[col] = found
    values = [f"CAST({ident(c)} AS DOUBLE) AS {ident('n_' + c)}" for c in numeric]
    flags = [f"CASE WHEN {ident(c)} = {literal(v)} THEN 1 ELSE 0 END AS {ident(f'l_{c}_{i}')}"
             for c, vs in levels.items() for i, v in enumerate(vs)]
    events = (f"SELECT CAST({ident(key)} AS VARCHAR) AS __k, {time_sql} AS __t, 1 AS __e, "
              f"row_number() OVER () AS __r{''.join(', ' + x for x in values + flags)} "
              f"FROM {qualified(project, table)} WHERE {ident(key)} IS NOT NULL "
              f"AND {ident(spec.timestamp)} IS NOT NULL")
    nulls = [f"NULL AS {ident('n_' + c)}" for c in numeric] + \
            [f"0 AS {ident(f'l_{c}_{i}')}" for c, vs in levels.items() for i, _ in enumerate(vs)]
    expiries = [f"SELECT __k, __t + INTERVAL {w} DAY + INTERVAL 1 MICROSECOND, 0, __r"
                f"{''.join(', ' + x for x in nulls)} FROM __events" for w in windows]
    frames = {"all": "(PARTITION BY __k ORDER BY __t RANGE UNBOUNDED PRECEDING)",
              "rows": "(PARTITION BY __k ORDER BY __t, __e, __r ROWS UNBOUNDED PRECEDING)",
              **{w: f"(PARTITION BY __k ORDER BY __t RANGE BETWEEN INTERVAL {w} DAY PRECEDING "
                    "AND CURRENT ROW)" for w in windows}}
    features: list[FeatureColumn] = []

    def add(name: str, sql: str, dtype: str) -> str:
        features.append(FeatureColumn(feature_name(table, name), dtype))
        return f"{sql} AS {ident(feature_name(table, name))}"

    aggs = [add("count", f"SUM(__e) OVER {frames['all']}", "Int64"),
            add("last_event_at", f"MAX(CASE WHEN __e = 1 THEN epoch(__t) END) OVER {frames['all']}", "Float64")]
    for col in numeric:
        n = ident("n_" + col)
        aggs += [add(f"{col}_sum", f"COALESCE(SUM({n}) OVER {frames['all']}, 0)", "Float64"),
                 add(f"{col}_mean", f"AVG({n}) OVER {frames['all']}", "Float64"),
                 add(f"{col}_last", f"last_value({n} IGNORE NULLS) OVER {frames['rows']}", "Float64")]
    for col, vs in levels.items():
        used: set[str] = set()
        for i, v in enumerate(vs):
            name = f"{col}_{snake(v)}_count"
            if name not in used:
                used.add(name)
                aggs.append(add(name, f"SUM({ident(f'l_{col}_{i}')}) OVER {frames['all']}", "Int64"))
    for w in windows:
        aggs.append(add(f"count_{w}d", f"SUM(__e) OVER {frames[w]}", "Int64"))
        for col in numeric:
            n = ident("n_" + col)
            aggs += [add(f"{col}_sum_{w}d", f"COALESCE(SUM({n}) OVER {frames[w]}, 0)", "Float64"),
                     add(f"{col}_mean_{w}d", f"AVG({n}) OVER {frames[w]}", "Float64"),
                     add(f"{col}_min_{w}d", f"MIN({n}) OVER {frames[w]}", "Float64"),
                     add(f"{col}_max_{w}d", f"MAX({n}) OVER {frames[w]}", "Float64")]
    stream = " UNION ALL ".join(["SELECT * FROM __events", *expiries])
    select = (f"* EXCLUDE (__keep) FROM (WITH __events AS ({events}) "
              f"SELECT __k AS {ident(entity_key)}, __t AS {TIMESTAMP}, {', '.join(aggs)}, "
              f"row_number() OVER (PARTITION BY __k, __t ORDER BY __e DESC, __r DESC) AS __keep "
              f"FROM ({stream})) WHERE __keep = 1")
    return select, features


def build_feature_tables(ws: Workspace, spec: ProjectSpec) -> Manifest:
    """Write the project's feature tables and labels to the lake; return their manifest."""
    project, entity_key = spec.project, spec.entity.key
    out_dir = features_dir(ws, project)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = lake_reader(ws, project)  # the lake, not the catalog file: no wait for a writer
    try:
        available = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1", [project]).fetchall()]
        tables: list[FeatureTable] = []
        for i, fspec in enumerate(spec.features):
            where = f"features[{i}]"
            if fspec.project:
                tables.append(_reused(ws, spec, fspec, where))
                continue
            columns = _columns(con, project, fspec.table, f"{where}.table", available)
            key = fspec.key or entity_key
            _require(key, columns, f"{where}.key", fspec.table)
            _require(fspec.timestamp, columns, f"{where}.timestamp", fspec.table)
            _require(fspec.created, columns, f"{where}.created", fspec.table)
            for col in fspec.columns or []:
                _require(col, columns, f"{where}.columns", fspec.table)
            time_sql = _time_expr(fspec.timestamp, columns.get(fspec.timestamp or ""), f"{where}.timestamp")
            if fspec.kind == "events":
                select, feats = _events_select(con, project, fspec, columns, key, entity_key, time_sql)
                query = f"SELECT {select}"
            else:
                select, feats = _snapshot_select(fspec, columns, key, entity_key, time_sql)
                query = (f"SELECT {select} FROM {qualified(project, fspec.table)} "
                         f"WHERE {ident(key)} IS NOT NULL")
            if not feats:
                raise DataError(f"{where}: table {fspec.table!r} has no usable feature columns")
            _unique_names(feats, where, fspec.table)
            path = out_dir / f"{fspec.table}.parquet"
            _copy(con, query, path)
            events = fspec.kind == "events"
            tables.append(FeatureTable(fspec.table, str(path), fspec.ttl_days, feats,
                                       created=bool(fspec.created), events=events,
                                       windows=sorted(set(fspec.windows)) if events else []))

        label = spec.label
        columns = _columns(con, project, label.table, "label.table", available)
        _require(spec.label_key(), columns, "label.key", label.table)
        _require(label.target, columns, "label.target", label.table)
        _require(label.timestamp, columns, "label.timestamp", label.table)
        time_sql = _time_expr(label.timestamp, columns[label.timestamp], "label.timestamp")
        labels_path = out_dir / "_labels.parquet"
        target_sql, key_sql, ts_sql = ident(label.target), ident(spec.label_key()), ident(label.timestamp)
        pending = f"({target_sql} IS NULL OR lower(trim(CAST({target_sql} AS VARCHAR))) IN ('', 'nan'))"
        left_out = con.execute(
            f"SELECT COUNT(*) FILTER (WHERE {pending}), "
            f"COUNT(*) FILTER (WHERE NOT {pending} AND {key_sql} IS NULL), "
            f"COUNT(*) FILTER (WHERE NOT {pending} AND {key_sql} IS NOT NULL AND {ts_sql} IS NULL) "
            f"FROM {qualified(project, label.table)}").fetchone()
        labels_left_out = {k: int(n) for k, n in zip(("pending", "no_key", "no_timestamp"), left_out)}
        _copy(con, f"SELECT CAST({key_sql} AS VARCHAR) AS {ident(entity_key)}, "
                   f"{time_sql} AS {TIMESTAMP}, {target_sql} AS {target_sql} "
                   f"FROM {qualified(project, label.table)} WHERE NOT {pending} "
                   f"AND {ts_sql} IS NOT NULL AND {key_sql} IS NOT NULL",
              labels_path)
        n_labels = con.execute(f"SELECT COUNT(*) FROM read_parquet({literal(labels_path)})").fetchone()[0]
        if n_labels == 0:
            raise DataError(f"label.table: table {label.table!r} has no rows with a key, "
                            f"{label.timestamp!r} and {label.target!r}")
    finally:
        con.close()
    manifest = Manifest(project, spec.entity.name, entity_key, tables, str(labels_path), label.target,
                        labels_left_out)
    manifest.save(manifest_path(ws, project))
    return manifest


def _unique_names(feats: list[FeatureColumn], where: str, table: str) -> None:
    """Two columns may not become one feature (``x`` and ``<table>__x`` both name ``<table>__x``)."""
    seen: set[str] = set()
    doubled = sorted({f.name for f in feats if f.name in seen or seen.add(f.name)})
    if doubled:
        raise DataError(f"{where}: columns of table {table!r} give the same feature names "
                        f"({', '.join(doubled)}): a column named '{table}__<name>' and one named "
                        "'<name>' both become that feature; rename one or list `columns:`")


def _reused(ws: Workspace, spec: ProjectSpec, fspec: FeatureTableSpec, where: str) -> FeatureTable:
    """The owner's feature table, checked: it exists and joins on this project's entity key."""
    owner = fspec.project
    path = manifest_path(ws, owner)
    if not path.is_file():
        raise DataError(f"{where}.project: project {owner!r} has no feature tables yet: "
                        f"run `gristmill features apply {owner}` first")
    theirs = Manifest.load(path)
    found = next((t for t in theirs.tables if t.table == fspec.table and not t.owner), None)
    if found is None:
        own = ", ".join(t.table for t in theirs.tables if not t.owner) or "none"
        raise DataError(f"{where}.table: project {owner!r} owns no feature table {fspec.table!r} "
                        f"(it owns: {own})")
    if theirs.key != spec.entity.key:
        raise DataError(f"{where}.project: {owner!r} keys {fspec.table!r} by {theirs.key!r}, this "
                        f"project by {spec.entity.key!r}: the entity keys must match to share it")
    return FeatureTable(found.table, found.path, found.ttl_days, found.features, owner=owner,
                        created=found.created, windows=found.windows, events=found.events)


def _copy(con, query: str, path: Path) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two builders never share a temp file
    con.execute(f"COPY ({query}) TO {literal(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    tmp.replace(path)
