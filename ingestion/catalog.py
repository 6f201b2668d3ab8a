"""The project's ingestion state and its DuckDB views.

``<lake>/_catalog.json`` is the source of truth: the current version of every table and, per
source, the fingerprint of the files it held last time. The DuckDB catalog only holds views derived
from it, recreated in one transaction after each run (so a crash mid-run leaves the views on the
previous versions, whose files are never removed):

- ``"<project>"."<table>"``: the current version's Parquet;
- ``"<project>"."_quarantine"``: rows that could not be parsed, of every current version;
- ``"<project>"."_tables"``, ``"<project>"."_lineage"``, ``"<project>"."_ingest_runs"``: what is
  current, which files made each version (path, size, sha256), and every run's totals.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gristmill.catalog import write_catalog
from gristmill.sql import ident, literal

STATE = "_catalog.json"
RUNS = "_runs.jsonl"
TABLES = "_tables.jsonl"


def load_state(lake: Path) -> dict:
    path = lake / STATE
    if path.is_file():
        return json.loads(path.read_text())
    return {"tables": {}, "sources": {}}


def save_state(lake: Path, state: dict) -> None:
    _atomic(lake / STATE, json.dumps(state, indent=2, default=str))


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def next_version(state: dict, name: str) -> str:
    current = state["tables"].get(name, {}).get("version", "v0000")
    return f"v{int(current[1:]) + 1:04d}"


def current_record(lake: Path, state: dict, name: str) -> dict | None:
    entry = state["tables"].get(name)
    if not entry:
        return None
    path = lake / name / entry["version"] / "schema.json"
    return json.loads(path.read_text()) if path.is_file() else None


def append_run(lake: Path, summary: dict) -> None:
    with open(lake / RUNS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(summary, default=str) + "\n")


def sync_views(catalog: Path, project: str, lake: Path, state: dict) -> None:
    """Recreate the project's views from ``state`` in one transaction."""
    records = _records(lake, state)
    summary = [{k: r[k] for k in ("name", "version", "rows", "quarantined_rows", "input_rows",
                                  "created_at", "run_id", "path")} for r in records.values()]
    _atomic(lake / TABLES, "".join(json.dumps(row) + "\n" for row in summary))
    write_catalog(catalog, view_statements(project, lake, state))  # held for milliseconds, locked


def _records(lake: Path, state: dict) -> dict[str, dict]:
    records = {name: current_record(lake, state, name) for name in sorted(state["tables"])}
    return {k: v for k, v in records.items() if v is not None}


def table_view(project: str, name: str, path: str | Path) -> str:
    """The view ``"<project>"."<name>"`` over one Parquet file (or glob)."""
    return (f"CREATE OR REPLACE VIEW {ident(project)}.{ident(name)} AS "
            f"SELECT * FROM read_parquet({literal(path)})")


def project_statements(project: str, lake: Path) -> list[str]:
    """The SQL that creates ``project``'s schema and views from what its lake holds now.

    From ``_catalog.json`` when there is one (:func:`view_statements`); else (tables registered by
    hand, as the test fixture ``add_tables`` does) one view per ``*.parquet`` file directly in the
    lake folder, named after the file's stem. Readers run it on an in-memory database
    (``gristmill.catalog.lake_reader``, ``gristmill.sandbox``) instead of opening the catalog.
    """
    if (lake / STATE).is_file():
        return view_statements(project, lake, load_state(lake))
    statements = [f"CREATE SCHEMA IF NOT EXISTS {ident(project)}"]
    return statements + [table_view(project, p.stem, p) for p in sorted(lake.glob("*.parquet"))]


def view_statements(project: str, lake: Path, state: dict) -> list[str]:
    """The SQL that creates the project's schema and views (see the module docstring) from ``state``.

    Run by :func:`sync_views` on the catalog and by ``gristmill.sql.sandboxed_query`` on an
    in-memory database; it reads ``<lake>/_tables.jsonl`` as :func:`sync_views` last wrote it.
    """
    records = _records(lake, state)
    schema = ident(project)
    statements = [f"CREATE SCHEMA IF NOT EXISTS {schema}"]
    statements += [table_view(project, name, record["path"]) for name, record in records.items()]
    if records:
        quarantine = " UNION ALL ".join(
            f"SELECT {literal(r['name'])} AS table_name, {literal(r['version'])} AS version, * "
            f"FROM read_parquet({literal(r['quarantine_path'])})" for r in records.values())
        statements.append(f"CREATE OR REPLACE VIEW {schema}.\"_quarantine\" AS {quarantine}")
        statements.append(f"CREATE OR REPLACE VIEW {schema}.\"_tables\" AS "
                          f"SELECT * FROM read_json_auto({literal(lake / TABLES)})")
        statements.append(f"CREATE OR REPLACE VIEW {schema}.\"_lineage\" AS "
                          f"SELECT * FROM read_json_auto({literal(str(lake) + '/*/v*/lineage.jsonl')}, "
                          "union_by_name = true)")
    if (lake / RUNS).is_file():
        statements.append(f"CREATE OR REPLACE VIEW {schema}.\"_ingest_runs\" AS "
                          f"SELECT * FROM read_json_auto({literal(lake / RUNS)}, union_by_name = true)")
    return statements
