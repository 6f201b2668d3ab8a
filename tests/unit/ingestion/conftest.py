"""Fixtures for the ingestion tests: build input folders, run ``ingest``, query the catalog.

Every test builds its own messy files in ``tmp_path``. ``ingest_run`` ingests them into project
``p`` (lake ``tmp_path/lake/p``, catalog ``tmp_path/catalog.duckdb``), checks the row accounting
identity ``sum(rows) + quarantined_rows == input_rows`` on every report, and returns the report.

This folder has no ``__init__.py`` (like the other test folders), so helpers are fixtures rather
than importable functions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def lake(tmp_path) -> Path:
    return tmp_path / "lake" / "p"


@pytest.fixture
def catalog(tmp_path) -> Path:
    return tmp_path / "catalog.duckdb"


@pytest.fixture
def make_files(tmp_path):
    """``make_files({"a.csv": "text" or b"bytes", ...}, folder="in")`` -> the folder."""

    def make(files: dict, folder: str = "in") -> Path:
        root = tmp_path / folder
        root.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, str):
                path.write_bytes(data.encode("utf-8"))
            else:
                path.write_bytes(data)
        return root

    return make


@pytest.fixture
def ingest_run(lake, catalog):
    """``ingest_run(path_or_spec, ...)`` -> IngestReport, its row accounting checked."""
    from ingestion import SourceSpec, ingest

    def run(*sources, **kwargs):
        specs = [s if isinstance(s, SourceSpec) else SourceSpec(path=s) for s in sources]
        report = ingest(specs, project="p", lake_dir=lake, catalog=catalog, **kwargs)
        assert sum(t.rows for t in report.tables) + report.quarantined_rows == report.input_rows
        assert report.quarantined_rows == sum(t.quarantined_rows for t in report.tables)
        return report

    return run


@pytest.fixture
def sql(catalog):
    """``sql(query, *params)`` -> list of row tuples from the project's catalog."""
    from gristmill.sql import connect

    def query(text: str, *params):
        con = connect(catalog)
        try:
            return con.execute(text, list(params)).fetchall()
        finally:
            con.close()

    return query


@pytest.fixture
def tables():
    """``tables(report)`` -> {table name: TableReport}."""
    return lambda report: {t.name: t for t in report.tables}


@pytest.fixture
def schema():
    """``schema(report, table)`` -> the table's schema.json, with ``cols``: {name: column record}."""

    def get(report, name: str) -> dict:
        found = {t.name: t for t in report.tables}
        assert name in found, f"no table {name!r}; tables: {sorted(found)}"
        record = json.loads((Path(found[name].path).parent / "schema.json").read_text())
        record["cols"] = {c["name"]: c for c in record["columns"]}
        return record

    return get
