"""Ingestion (local paths, or files uploaded to the server) and ``gristmill sql``."""

from __future__ import annotations

import secrets
from pathlib import Path, PurePosixPath
from typing import Any

from gristmill.errors import Forbidden, GristmillError, NotFound
from gristmill.identity.roles import Action
from gristmill.services.context import Context
from gristmill.services.registry import operation

UPLOAD_ID_LEN = 16


@operation("data.upload", "POST", "/projects/{project}/uploads", Action.ingest, changes=True,
           creates_project=True, upload=True)
def upload(ctx: Context, project: str, files: list[tuple[str, Any]]) -> dict:
    """Store uploaded files for a later ingest; their names may hold folders (``a/b.csv``), never
    ``..`` or an absolute path. Returns the upload's id."""
    upload_id = secrets.token_hex(UPLOAD_ID_LEN // 2)
    folder = ctx.ws.uploads(project) / upload_id
    folder.mkdir(parents=True)
    saved = []
    for name, stream in files:
        rel = _relative(name)
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with open(target, "wb") as out:
            while chunk := stream.read(1 << 20):
                out.write(chunk)
                size += len(chunk)
        saved.append({"name": str(rel), "bytes": size})
    ctx.note(before=None, after={"upload": upload_id, "files": len(saved)})
    return {"project": project, "upload": upload_id, "files": saved}


def _relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name.replace("\\", "/"))
    if not name or rel.is_absolute() or any(part in ("..", "") for part in rel.parts) or ":" in rel.parts[0]:
        raise GristmillError(f"upload file name {name!r} must be a relative path without '..'")
    return rel


def upload_folder(ctx: Context, project: str, upload_id: str, sub: str | None = None) -> Path:
    """The folder of an upload (or a folder inside it), checked to lie inside the project's uploads."""
    if sub is not None and not isinstance(sub, str):
        raise GristmillError(f"a source's folder must be a name inside the upload, not {sub!r}")
    if len(upload_id) != UPLOAD_ID_LEN or not all(c in "0123456789abcdef" for c in upload_id):
        raise GristmillError(f"{upload_id!r} is not an upload id")
    base = (ctx.ws.uploads(project) / upload_id).resolve()
    folder = (base / _relative(sub)).resolve() if sub else base
    if not base.is_dir() or not folder.is_relative_to(base) or not folder.exists():
        raise NotFound(f"no upload {upload_id!r}{f' / {sub!r}' if sub else ''} in project {project!r}")
    return folder


@operation("data.ingest", "POST", "/projects/{project}/ingest", Action.ingest, changes=True,
           creates_project=True, job=True)
def ingest(ctx: Context, project: str, path: str | None = None, upload: str | None = None,
           sources: list[dict] | None = None, jsonl: bool = False) -> dict:
    """Turn raw files into typed tables: a local ``path`` (local use only: the server reads no
    path a caller names), an ``upload`` id, or neither for the spec's sources. ``sources`` maps
    the spec's sources to folders of the upload (``[{"folder": "s0", "name": ..., ...}]``)."""
    from gristmill import pipeline
    from gristmill.spec import SourceSpec, load_spec

    if path is not None and not ctx.is_local:
        raise Forbidden("the server reads no path a caller names: upload the files "
                        "(`gristmill ingest PROJECT FOLDER` does it for you)")
    spec = load_spec(ctx.ws.spec_path(project)) if ctx.ws.spec_path(project).is_file() else None
    folder = None
    if upload is not None and sources:
        from gristmill.spec import validate

        resolved = [validate(SourceSpec, {k: v for k, v in s.items() if k != "folder"} |
                             {"path": str(upload_folder(ctx, project, upload, s.get("folder")))},
                             "ingest", f"sources[{i}]")
                    for i, s in enumerate(sources)]
        spec = _with_sources(ctx, project, spec, resolved)
    elif upload is not None:
        folder = upload_folder(ctx, project, upload)
    elif path is not None:
        folder = Path(path)
    elif spec is None:
        raise GristmillError(f"project {project!r} has no spec: give a folder to ingest")
    elif not ctx.is_local:
        raise Forbidden("the server reads no path a caller names: upload the spec's sources "
                        "(`gristmill ingest SPEC.yaml` does it for you)")
    report = pipeline.ingest(ctx.ws, project, spec, folder, jsonl=jsonl, progress=ctx.progress)
    result = report.model_dump(mode="json")
    _lineage(ctx, project, report)
    ctx.note(before=None, after={"tables": {t.name: t.version for t in report.tables},
                                 "input_rows": report.input_rows, "quarantined_rows": report.quarantined_rows})
    return result


def _with_sources(ctx, project, spec, sources):
    from gristmill.spec import parse_spec

    if spec is None:
        raise GristmillError(f"project {project!r} has no spec: register it first")
    return parse_spec(spec.model_dump(mode="json") | {"sources": [s.model_dump(mode="json") for s in sources]},
                      f"{project}.yaml")


def _lineage(ctx: Context, project: str, report) -> None:
    """file:<sha256> -> table:<name>@<version> for every changed table (from its lineage record)."""
    import json

    from gristmill.audit import lineage

    edges = []
    lake = ctx.ws.lake(project)
    for table in report.tables:
        record = lake / table.name / table.version / "lineage.jsonl"
        if not record.is_file():
            continue
        for line in record.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("sha256"):
                    edges.append((f"file:{row['sha256']}", f"table:{table.name}@{table.version}"))
    if edges:
        lineage.record(ctx.md, project, edges, ctx.actor)


@operation("data.sql", "POST", "/projects/{project}/sql", Action.query)
def sql(ctx: Context, project: str, query: str, limit: int | None = None) -> dict:
    """Run a read-only SQL query over the caller's projects (the named one searched first), with
    no access to files outside their lakes and a row and time limit."""
    from gristmill.config import load_config
    from gristmill.identity.policy import visible_projects
    from gristmill.services.project_ops import known_projects
    from gristmill.sql import sandboxed_query

    ctx.ws.require_project(project, spec=False)
    settings = load_config(ctx.ws).server
    allowed = visible_projects(ctx.md, ctx.principal, known_projects(ctx))
    max_rows = min(limit or settings.sql_max_rows, settings.sql_max_rows)
    return sandboxed_query(ctx.ws, project, [p for p in allowed if p != project], query,
                           max_rows=max_rows, max_seconds=settings.sql_max_seconds)


@operation("data.tables", "GET", "/projects/{project}/tables", Action.read)
def tables(ctx: Context, project: str, quarantine_limit: int = 50) -> dict:
    """The project's tables: current version, rows, columns with types, and quarantined rows
    (file, line and reason; at most ``quarantine_limit`` per table)."""
    from ingestion.catalog import current_record, load_state

    import duckdb

    from gristmill.sql import literal

    lake = ctx.ws.lake(project)
    state = load_state(lake)
    out = []
    for name in sorted(state["tables"]):
        record = current_record(lake, state, name) or {}
        quarantined: list[dict] = []
        path = record.get("quarantine_path")
        if path and Path(path).is_file() and record.get("quarantined_rows"):
            con = duckdb.connect()
            try:
                cur = con.execute(f"SELECT * FROM read_parquet({literal(path)}) LIMIT {max(0, int(quarantine_limit))}")
                names = [d[0] for d in cur.description]
                quarantined = [{k: (v if isinstance(v, (int, float, bool)) or v is None else str(v))
                                for k, v in zip(names, row)} for row in cur.fetchall()]
            finally:
                con.close()
        versions = sorted(p.name for p in (lake / name).iterdir() if p.is_dir() and p.name.startswith("v")) \
            if (lake / name).is_dir() else []
        out.append({"table": name, "version": state["tables"][name].get("version"), "versions": versions,
                    "rows": record.get("rows"), "created_at": record.get("created_at"),
                    "columns": [{"name": c["name"], "type": c["type"], "nulls": c.get("nulls")}
                                for c in record.get("columns", [])],
                    "sources": [s.get("path") for s in record.get("sources", [])],
                    "quarantined_rows": record.get("quarantined_rows", 0), "quarantine": quarantined})
    return {"project": project, "tables": out}
