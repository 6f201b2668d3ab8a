"""Feature tables: typed, keyed, time-stamped Parquet built from a project's ingested tables.

Each ``features:`` entry of the spec becomes ``lake/<project>/_features/<table>.parquet`` with the
entity key (as text), ``event_timestamp`` (UTC) and feature columns named ``<table>__<column>``:

- ``snapshot`` tables keep their columns as they are (dates become days since 1970-01-01); with
  ``created``, a ``created_timestamp`` column lets a later-written row correct an earlier one;
- ``events`` tables become running aggregates per entity up to each event time: a count, the sum
  and mean of each numeric column, and a count per value of each low-cardinality text column.
  Every aggregate at time t uses only events stamped at or before t, so point-in-time joins on it
  never leak later events.

A manifest (``_manifest.json``) lists every feature with its Feast type for the definitions writer.
A table reused from another project (``project:`` in the spec) is not built here: the manifest
points at the owner's table, and the definitions import the owner's feature view.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gristmill.errors import DataError
from gristmill.features.naming import CREATED, STATIC_TIME, TIMESTAMP, feature_name, snake
from gristmill.spec import FeatureTableSpec, ProjectSpec
from gristmill.sql import connect, ident, literal, qualified
from gristmill.workspace import Workspace

MAX_CATEGORY_LEVELS = 12
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
           "UBIGINT", "FLOAT", "DOUBLE", "REAL")
TEMPORAL = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")
INTERNAL_COLUMNS = {"_source_file", "_row_number", "_ingest_run"}


@dataclass
class FeatureColumn:
    name: str
    dtype: str  # Feast type name: Float64, Int64, String, Bool


@dataclass
class FeatureTable:
    table: str
    path: str
    ttl_days: int | None
    features: list[FeatureColumn] = field(default_factory=list)
    owner: str = ""  # the project that builds and applies it (this one when empty)
    created: bool = False  # has a created_timestamp column (corrections)


@dataclass
class Manifest:
    project: str
    entity: str
    key: str
    tables: list[FeatureTable]
    labels_path: str
    target: str

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
            picks.append(f"CAST(epoch(CAST({ident(col)} AS TIMESTAMP)) / 86400.0 AS DOUBLE) AS {ident(name)}")
            features.append(FeatureColumn(name, "Float64"))
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
    table = spec.table
    window = "w"
    aggs = [f"COUNT(*) OVER {window} AS {ident(feature_name(table, 'count'))}"]
    features = [FeatureColumn(feature_name(table, "count"), "Int64")]
    for col in spec.columns or [c for c in columns if c not in {key, spec.timestamp} | INTERNAL_COLUMNS]:
        dtype = columns[col]
        if dtype in NUMERIC or dtype.startswith("DECIMAL") or dtype == "BOOLEAN":
            value = f"CAST({ident(col)} AS DOUBLE)"
            for agg, fn in (("sum", "SUM"), ("mean", "AVG")):
                name = feature_name(table, f"{col}_{agg}")
                aggs.append(f"{fn}({value}) OVER {window} AS {ident(name)}")
                features.append(FeatureColumn(name, "Float64"))
        elif dtype == "VARCHAR":
            levels = con.execute(
                f"SELECT {ident(col)} FROM {qualified(project, table)} WHERE {ident(col)} IS NOT NULL "
                f"GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT {MAX_CATEGORY_LEVELS + 1}").fetchall()
            if not levels or len(levels) > MAX_CATEGORY_LEVELS:
                continue  # free text or ids: no per-value counts
            used: set[str] = set()
            for (level,) in levels:
                name = feature_name(table, f"{col}_{snake(level)}_count")
                if name in used:
                    continue
                used.add(name)
                aggs.append(f"SUM(CASE WHEN {ident(col)} = {literal(level)} THEN 1 ELSE 0 END) "
                            f"OVER {window} AS {ident(name)}")
                features.append(FeatureColumn(name, "Int64"))
    inner = (f"SELECT CAST({ident(key)} AS VARCHAR) AS {ident(entity_key)}, {time_sql} AS {TIMESTAMP}, "
             + ", ".join(aggs)
             + f" FROM {qualified(project, table)} WHERE {ident(key)} IS NOT NULL "
             f"AND {ident(spec.timestamp)} IS NOT NULL "
             f"WINDOW {window} AS (PARTITION BY {ident(key)} ORDER BY {time_sql} "
             f"RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)")
    outer = (f"* FROM ({inner}) QUALIFY row_number() OVER "
             f"(PARTITION BY {ident(entity_key)}, {TIMESTAMP} ORDER BY {TIMESTAMP}) = 1")
    return outer, features


def build_feature_tables(ws: Workspace, spec: ProjectSpec) -> Manifest:
    """Write the project's feature tables and labels to the lake; return their manifest."""
    project, entity_key = spec.project, spec.entity.key
    out_dir = features_dir(ws, project)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect(ws.catalog)
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
            path = out_dir / f"{fspec.table}.parquet"
            _copy(con, query, path)
            tables.append(FeatureTable(fspec.table, str(path), fspec.ttl_days, feats,
                                       created=bool(fspec.created)))

        label = spec.label
        columns = _columns(con, project, label.table, "label.table", available)
        _require(spec.label_key(), columns, "label.key", label.table)
        _require(label.target, columns, "label.target", label.table)
        _require(label.timestamp, columns, "label.timestamp", label.table)
        time_sql = _time_expr(label.timestamp, columns[label.timestamp], "label.timestamp")
        labels_path = out_dir / "_labels.parquet"
        _copy(con, f"SELECT CAST({ident(spec.label_key())} AS VARCHAR) AS {ident(entity_key)}, "
                   f"{time_sql} AS {TIMESTAMP}, {ident(label.target)} AS {ident(label.target)} "
                   f"FROM {qualified(project, label.table)} WHERE {ident(label.target)} IS NOT NULL "
                   f"AND {ident(label.timestamp)} IS NOT NULL AND {ident(spec.label_key())} IS NOT NULL",
              labels_path)
        n_labels = con.execute(f"SELECT COUNT(*) FROM read_parquet({literal(labels_path)})").fetchone()[0]
        if n_labels == 0:
            raise DataError(f"label.table: table {label.table!r} has no rows with a key, "
                            f"{label.timestamp!r} and {label.target!r}")
    finally:
        con.close()
    manifest = Manifest(project, spec.entity.name, entity_key, tables, str(labels_path), label.target)
    manifest.save(manifest_path(ws, project))
    return manifest


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
                        created=found.created)


def _copy(con, query: str, path: Path) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    con.execute(f"COPY ({query}) TO {literal(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    tmp.replace(path)
