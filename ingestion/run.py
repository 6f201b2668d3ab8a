"""One ingestion run: discover, read, group, type, write, register; every row accounted for."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path

from gristmill.catalog import LockBusy, project_lock
from gristmill.errors import GristmillError
from ingestion import catalog as cat
from ingestion.discover import cleanup, discover
from ingestion.models import FileIssue, IngestReport, SourceSpec, TableReport
from ingestion.names import dataset_base, table_name
from ingestion.readers import RawPart, TooWide, reader_for
from ingestion.write import INTERNAL, Group, write_version

# Bump when a change to the readers or inference would read the same files differently: every
# table then gets a new version on its next ingestion.
INGEST_VERSION = "2"


class IngestError(GristmillError):
    """Ingestion cannot proceed (a missing source, a broken invariant)."""


def ingest(sources: list[SourceSpec], *, project: str, lake_dir: Path, catalog: Path,
           jsonl: bool = False, progress: bool = False) -> IngestReport:
    """Ingest ``sources`` into ``lake_dir`` and the project's schema of the DuckDB ``catalog``.

    One ingestion of a project runs at a time (others wait for its lock, see
    :func:`gristmill.catalog.project_lock`); the catalog is opened only for the closing view update.
    """
    started = time.monotonic()
    lake_dir.mkdir(parents=True, exist_ok=True)
    with project_lock(lake_dir, project):
        return _ingest(sources, project, lake_dir, catalog, jsonl, progress, started)


def _ingest(sources: list[SourceSpec], project: str, lake_dir: Path, catalog: Path, jsonl: bool,
            progress: bool, started: float) -> IngestReport:
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    staging = lake_dir / "_staging" / run_id
    staging.mkdir(parents=True)
    state = cat.load_state(lake_dir)
    report = IngestReport(project=project, run_id=run_id)
    try:
        found, problems = discover(sources, staging)
        for problem in problems:
            if problem:
                raise IngestError(problem)
        report.bad_files, report.skipped_files = found.bad, found.skipped
        keys = [_source_key(s) for s in sources]
        # a source seen before is compared by its files' hashes before anything is read; a new
        # one is read at once while its files are hashed (discover.InputFile.sha256)
        unchanged = {i for i in range(len(sources)) if keys[i] in state["sources"]
                     and _unchanged(keys[i], _source_fingerprint(i, keys[i], found), state, lake_dir)}
        kept = {n for i in unchanged for n in state["sources"][keys[i]]["tables"]}
        with _progress(progress) as bar, _staging_db(staging) as con:
            todo = [f for f in found.files if f.source_index not in unchanged]
            parts = _read_all(con, todo, staging, report, bar)
            groups = _groups(parts, sources, keys, state, kept)
            written = _write_all(con, groups, lake_dir, state, run_id, jsonl, bar)
        for name in kept:
            written[name] = cat.current_record(lake_dir, state, name) | {"changed": False}
        for index, key in enumerate(keys):
            if index not in unchanged:
                made = {n: r["version"] for n, r in written.items() if r.get("source_key") == key}
                state["sources"][key] = {"fingerprint": _source_fingerprint(index, key, found),
                                         "tables": made}
        for name, record in written.items():
            if "source_key" in record:
                state["tables"][name] = {"version": record["version"], "fingerprint": record["fingerprint"],
                                         "source": record["source_key"],
                                         "columns": sorted(c["name"] for c in record["columns"])}
        _fill_report(report, written, started)
        cat.save_state(lake_dir, state)
        cat.append_run(lake_dir, _run_summary(report))
        try:
            cat.sync_views(catalog, project, lake_dir, state)
        except LockBusy as exc:  # the lake holds the run; only the catalog file's views lag behind
            raise LockBusy(f"ingested into the lake (run {run_id}; gristmill sql and training see it), "
                           f"but the catalog file's views were not updated: {exc}; ingest {project!r} "
                           "again to update them") from None
    finally:
        cleanup(staging)
    return report


@contextmanager
def _staging_db(staging: Path):
    """An in-memory DuckDB database for this run's staging tables (spills to disk beyond memory)."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        # staging beyond this spills to disk: a file larger than memory still ingests
        con.execute(f"SET memory_limit = {_quote(os.environ.get('GRISTMILL_INGEST_MEMORY', '2GB'))}")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        # The in_clause optimizer turns every `x IN (constants)` into a join: the null-token test
        # of each text column became one more join in a chain as long as the table is wide, each
        # carrying every column (200 columns of 5 rows: 8-19 s, DuckDB buffers near 2 GB; 250 ran out
        # of memory). Our lists are short (17 null tokens, 11 yes/no words).
        con.execute("SET disabled_optimizers = 'in_clause'")
        con.execute(f"SET temp_directory = {_quote(staging / 'tmp')}")
        yield con
    finally:
        con.close()


def _read_all(con, files: list, staging: Path, report: IngestReport, bar) -> list[RawPart]:
    parts: list[RawPart] = []
    task = bar.add_task("reading", total=len(files)) if bar else None
    for n, file in enumerate(files):
        if bar:
            bar.update(task, description=f"reading {file.display}")
        try:
            got = reader_for(file.kind)(con, file, f"f{n}", staging)
        except TooWide as exc:
            report.bad_files.append(FileIssue(path=file.display, reason=f"refused: {exc}"))
            continue
        except Exception as exc:  # any reader failure: the file is bad, the run goes on
            report.bad_files.append(FileIssue(path=file.display, reason=_reason(file.kind, exc)))
            continue
        if not got:
            report.skipped_files.append(FileIssue(path=file.display, reason=f"no data found in this {file.kind} file"))
        for part in got:
            report.warnings += [FileIssue(path=part.display, reason=w) for w in part.warnings]
            if part.table:
                parts.append(part)
            else:
                report.skipped_files.append(FileIssue(path=part.display, reason=part.skipped or "no rows"))
        if bar:
            bar.advance(task)
    return parts


def _write_all(con, groups: list[Group], lake: Path, state: dict, run_id: str, jsonl: bool,
               bar) -> dict[str, dict]:
    written: dict[str, dict] = {}
    task = bar.add_task("writing", total=len(groups)) if bar else None
    for number, group in enumerate(groups):
        if bar:
            bar.update(task, description=f"writing {group.name}")
        written[group.name] = _write(con, group, lake, state, run_id, jsonl, number)
        if bar:
            bar.advance(task)
    return written


def _fill_report(report: IngestReport, written: dict[str, dict], started: float) -> None:
    report.tables = [_table_report(r) for _, r in sorted(written.items())]
    report.input_rows = sum(r["input_rows"] for r in written.values())
    report.quarantined_rows = sum(r["quarantined_rows"] for r in written.values())
    ingested = sum(t.rows for t in report.tables)
    if ingested + report.quarantined_rows != report.input_rows:
        raise IngestError(f"row accounting failed: {report.input_rows} input rows, {ingested} "
                          f"ingested, {report.quarantined_rows} quarantined (a bug: please report)")
    report.seconds = round(time.monotonic() - started, 2)


def _run_summary(report: IngestReport) -> dict:
    return {"run_id": report.run_id, "finished_at": datetime.now(timezone.utc).isoformat(),
            "seconds": report.seconds, "input_rows": report.input_rows,
            "ingested_rows": report.input_rows - report.quarantined_rows,
            "quarantined_rows": report.quarantined_rows, "tables": len(report.tables),
            "changed_tables": sum(t.changed for t in report.tables),
            "bad_files": len(report.bad_files), "skipped_files": len(report.skipped_files)}


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
    text = str(source.path)
    where = text if any(ch in text for ch in "*?[") else str(Path(source.path).resolve())
    return json.dumps([where, source.name, source.format, sorted(source.types.items())])


def _source_fingerprint(index: int, key: str, found) -> str:
    files = sorted((f.display, f.sha256, f.kind) for f in found.files if f.source_index == index)
    return hashlib.sha256(json.dumps([INGEST_VERSION, key, files]).encode()).hexdigest()


def _unchanged(key: str, fingerprint: str, state: dict, lake: Path) -> bool:
    """The source's files are byte-identical to last time and its tables are still its own."""
    known = state["sources"].get(key)
    if not known or known["fingerprint"] != fingerprint or not known["tables"]:
        return False
    return all(state["tables"].get(name, {}).get("version") == version
               and cat.current_record(lake, state, name) is not None
               for name, version in known["tables"].items())


def _groups(parts: list[RawPart], sources: list[SourceSpec], keys: list[str], state: dict,
            kept: set[str]) -> list[Group]:
    """Parts with the same columns, folder and base name form one dataset (monthly files union).

    A name already held by another source's table with other columns, or by a table kept as it
    is in this run, gets a suffix (``_2``...): one source never overwrites another's dataset."""
    buckets: dict[tuple, list[RawPart]] = defaultdict(list)
    for part in parts:
        columns = frozenset(c for c in part.columns if c not in INTERNAL)
        base = dataset_base(part.stem) or Path(part.file.folder).name or part.stem
        buckets[(part.file.source_index, part.file.folder, base, columns)].append(part)
    per_source: dict[int, int] = defaultdict(int)
    for key in buckets:
        per_source[key[0]] += 1
    used: set[str] = set()
    groups = []
    for (index, _, base, columns), members in buckets.items():
        given = sources[index].name
        wanted = table_name((given if per_source[index] == 1 else f"{given}__{base}") if given else base)
        name, n = wanted, 1
        while name in used or name in kept or _held_by_other(state, name, keys[index], columns):
            n += 1
            name = f"{wanted}_{n}"
        used.add(name)
        groups.append(Group(name, index, members, dict(sources[index].types), keys[index]))
    return groups


def _held_by_other(state: dict, name: str, key: str, columns: frozenset) -> bool:
    entry = state["tables"].get(name)
    if entry is None or entry.get("source") in (None, key):
        return False
    return set(entry.get("columns", [])) != set(columns)


def _write(con, group: Group, lake: Path, state: dict, run_id: str, jsonl: bool, number: int) -> dict:
    def fingerprint() -> str:  # the files' hashes: with no current version, wanted only after the write
        return hashlib.sha256(json.dumps([INGEST_VERSION, group.fingerprint_items(), sorted(group.types.items()),
                                          jsonl]).encode()).hexdigest()

    current = cat.current_record(lake, state, group.name)
    if current is not None and current.get("fingerprint") == fingerprint():
        return current | {"changed": False, "source_key": group.source_key}
    version = cat.next_version(state, group.name)
    record = write_version(con, group, lake / group.name / version, version=version, run_id=run_id,
                           fingerprint=fingerprint, jsonl=jsonl, view=f"g{number}")
    return record | {"changed": True, "source_key": group.source_key}


def _table_report(record: dict) -> TableReport:
    return TableReport(
        name=record["name"], rows=record["rows"],
        columns={c["name"]: c["type"] for c in record["columns"]},
        sources=[s["path"] for s in record["sources"]], version=record["version"],
        changed=record.get("changed", True), quarantined_rows=record["quarantined_rows"],
        path=record["path"])
