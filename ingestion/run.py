"""One ingestion run: discover, read, group, type, write, register; every row accounted for."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import defaultdict
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

from gristmill.errors import GristmillError
from ingestion import catalog as cat
from ingestion.discover import cleanup, discover
from ingestion.models import FileIssue, IngestReport, SourceSpec, TableReport
from ingestion.names import dataset_base, table_name, unique
from ingestion.readers import RawPart, reader_for
from ingestion.write import INTERNAL, Group, write_version

# Bump when a change to the readers or inference would read the same files differently: every
# table then gets a new version on its next ingestion.
INGEST_VERSION = "1"


class IngestError(GristmillError):
    """Ingestion cannot proceed (a missing source, a broken invariant)."""


def ingest(sources: list[SourceSpec], *, project: str, lake_dir: Path, catalog: Path,
           jsonl: bool = False, progress: bool = False) -> IngestReport:
    """Ingest ``sources`` into ``lake_dir`` and the project's schema of the DuckDB ``catalog``."""
    import duckdb

    started = time.monotonic()
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    lake_dir.mkdir(parents=True, exist_ok=True)
    staging = lake_dir / "_staging" / run_id
    staging.mkdir(parents=True)
    state = cat.load_state(lake_dir)
    report = IngestReport(project=project, run_id=run_id)
    try:
        found, problems = discover(sources, staging)
        for source, problem in zip(sources, problems):
            if problem:
                raise IngestError(f"source {source.path}: {problem}")
        report.bad_files, report.skipped_files = found.bad, found.skipped
        unchanged, keys = _unchanged_sources(sources, found, state, lake_dir)
        con = duckdb.connect(str(staging / "staging.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET temp_directory = {_quote(staging / 'tmp')}")
        parts: list[RawPart] = []
        todo = [f for f in found.files if f.source_index not in unchanged]
        with _progress(progress) as bar:
            task = bar.add_task("reading", total=len(todo)) if bar else None
            for n, file in enumerate(todo):
                if bar:
                    bar.update(task, description=f"reading {file.display}")
                try:
                    got = reader_for(file.kind)(con, file, f"f{n}", staging)
                except Exception as exc:  # any reader failure: the file is bad, the run goes on
                    report.bad_files.append(FileIssue(path=file.display, reason=_reason(file.kind, exc)))
                    got = []
                for part in got:
                    if not part.table:
                        report.skipped_files.append(FileIssue(path=part.display, reason="no rows"))
                    else:
                        parts.append(part)
                if bar:
                    bar.advance(task)
            kept = {n for i in unchanged for n in state["sources"][keys[i]]["tables"]}
            groups = _groups(parts, sources, taken=kept)
            task = bar.add_task("writing", total=len(groups)) if bar else None
            written: dict[str, dict] = {}
            for number, group in enumerate(groups):
                if bar:
                    bar.update(task, description=f"writing {group.name}")
                written[group.name] = _write(con, group, lake_dir, state, run_id, jsonl, number)
                if bar:
                    bar.advance(task)
        con.close()
        for index in unchanged:
            for name in state["sources"][keys[index]]["tables"]:
                written[name] = cat.current_record(lake_dir, state, name) | {"changed": False}
        for index, key in keys.items():
            made = sorted(n for n, r in written.items() if _from_source(r, index))
            if index not in unchanged:
                state["sources"][key] = {"fingerprint": _source_fingerprint(index, sources, found),
                                         "tables": made}
        for name, record in written.items():
            state["tables"][name] = {"version": record["version"], "fingerprint": record["fingerprint"]}
        report.tables = [_table_report(r) for _, r in sorted(written.items())]
        report.input_rows = sum(r["input_rows"] for r in written.values())
        report.quarantined_rows = sum(r["quarantined_rows"] for r in written.values())
        ingested = sum(t.rows for t in report.tables)
        if ingested + report.quarantined_rows != report.input_rows:
            raise IngestError(f"row accounting failed: {report.input_rows} input rows, {ingested} "
                              f"ingested, {report.quarantined_rows} quarantined (a bug: please report)")
        cat.save_state(lake_dir, state)
        report.seconds = round(time.monotonic() - started, 2)
        cat.append_run(lake_dir, {"run_id": run_id, "finished_at": datetime.now(timezone.utc).isoformat(),
                                  "seconds": report.seconds, "input_rows": report.input_rows,
                                  "ingested_rows": ingested, "quarantined_rows": report.quarantined_rows,
                                  "tables": len(report.tables), "changed_tables": sum(t.changed for t in report.tables),
                                  "bad_files": len(report.bad_files), "skipped_files": len(report.skipped_files)})
        cat.sync_views(catalog, project, lake_dir, state)
    finally:
        cleanup(staging)
    return report


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _reason(kind: str, exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot be read as {kind}: {text[:300]}"


def _progress(enabled: bool):
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def _source_key(source: SourceSpec) -> str:
    return json.dumps([str(Path(source.path).resolve()) if "*" not in str(source.path) else str(source.path),
                       source.name, source.format, sorted(source.types.items())])


def _source_fingerprint(index: int, sources: list[SourceSpec], found) -> str:
    files = sorted((f.display, f.sha256, f.kind) for f in found.files if f.source_index == index)
    return hashlib.sha256(json.dumps([INGEST_VERSION, _source_key(sources[index]), files]).encode()).hexdigest()


def _unchanged_sources(sources, found, state: dict, lake: Path) -> tuple[set[int], dict[int, str]]:
    """Sources whose files are byte-identical to last time and whose tables are still current."""
    keys = {i: _source_key(s) for i, s in enumerate(sources)}
    same = set()
    for index, key in keys.items():
        known = state["sources"].get(key)
        if not known or known["fingerprint"] != _source_fingerprint(index, sources, found):
            continue
        if known["tables"] and all(cat.current_record(lake, state, n) for n in known["tables"]):
            same.add(index)
    return same, keys


def _from_source(record: dict, index: int) -> bool:
    return record.get("source_index") == index


def _groups(parts: list[RawPart], sources: list[SourceSpec], taken: set[str]) -> list[Group]:
    """Parts with the same columns, folder and base name form one dataset (monthly files union)."""
    buckets: dict[tuple, list[RawPart]] = defaultdict(list)
    for part in parts:
        columns = frozenset(c for c in part.columns if c not in INTERNAL)
        base = dataset_base(part.stem) or Path(part.file.folder).name or part.stem
        buckets[(part.file.source_index, part.file.folder, base, columns)].append(part)
    per_source: dict[int, list[tuple]] = defaultdict(list)
    for key in buckets:
        per_source[key[0]].append(key)
    names, groups = [], []
    for key, members in buckets.items():
        index, _, base, _ = key
        given = sources[index].name
        if given:
            name = given if len(per_source[index]) == 1 else f"{given}__{base}"
        else:
            name = base
        names.append(table_name(name))
        groups.append(Group("", index, members, dict(sources[index].types)))
    for group, name in zip(groups, unique(names, taken)):
        group.name = name
    return groups


def _write(con, group: Group, lake: Path, state: dict, run_id: str, jsonl: bool, number: int) -> dict:
    fingerprint = hashlib.sha256(json.dumps(
        [INGEST_VERSION, group.fingerprint_items(), sorted(group.types.items()), jsonl]).encode()).hexdigest()
    current = cat.current_record(lake, state, group.name)
    if current is not None and current.get("fingerprint") == fingerprint:
        return current | {"changed": False, "source_index": group.source_index}
    version = cat.next_version(state, group.name)
    record = write_version(con, group, lake / group.name / version, version=version, run_id=run_id,
                           fingerprint=fingerprint, jsonl=jsonl, view=f"g{number}")
    return record | {"changed": True, "source_index": group.source_index}


def _table_report(record: dict) -> TableReport:
    return TableReport(
        name=record["name"], rows=record["rows"],
        columns={c["name"]: c["type"] for c in record["columns"]},
        sources=[s["path"] for s in record["sources"]], version=record["version"],
        changed=record.get("changed", True), quarantined_rows=record["quarantined_rows"],
        path=record["path"])
