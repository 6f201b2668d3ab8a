"""JSON documents and JSON Lines, flattened to tables by one rule.

The flattening rule:

- nested objects become columns named by their key path joined with ``__``
  (``{"customer": {"id": 7}}`` -> column ``customer__id``);
- arrays of scalars stay in one column as lists;
- arrays of objects become a child table ``<table>__<key path>``, one row per element, with a
  ``parent_row_number`` column holding the parent's ``_row_number`` (join on it and
  ``_source_file``);
- keys that appear in only some records (drifting keys) are the union of all keys: missing ones
  are null; a key whose values mix kinds (numbers and text) keeps every value as text.

A JSON document that is an array holds one record per element; an object whose only key holds an
array of objects (``{"data": [...]}``) is unwrapped; any other object is a single record. In JSON
Lines each line is a record: a line that is not valid JSON or not an object is quarantined with its
line number and text.
"""

from __future__ import annotations

import codecs
import io
import json
from pathlib import Path
from typing import Any

from ingestion.discover import InputFile
from ingestion.names import column_names, snake_path
from gristmill.sql import ident
from ingestion.readers import MAX_COLUMNS, RawPart, Reject, TooWide
from ingestion.readers.jsonstream import MAX_NESTING, BadJson, TooDeep, array_elements, nesting
from ingestion.readers.staging import append_arrow, arrow_table

CHUNK_ROWS = 20_000
PARENT = "parent_row_number"
VALUE = "value"
RAW = "_gm_raw"  # the element as written, while it is not known to be a row or a reject


class _Collector:
    """Rows of one table (the top level or the child table of one key path), built in chunks."""

    def __init__(self, con, table: str, path: tuple) -> None:
        self.con, self.table, self.path = con, table, path
        self.keys: dict[tuple, None] = {}
        self.rows: list[dict] = []
        self.numbers: list[int] = []
        self.count = 0
        self.created = False
        self.names: dict[tuple, str] = {}

    def add(self, flat: dict, number: int) -> None:
        for key in flat:
            self.keys.setdefault(key, None)
        self.rows.append(flat)
        self.numbers.append(number)
        self.count += 1
        if len(self.rows) >= CHUNK_ROWS:
            self.flush()

    def flush(self, force: bool = False) -> None:
        if not self.rows and not force:
            return
        keys = list(self.keys)
        names = self._names(keys)
        data = [[row.get(k) for k in keys] for row in self.rows]
        append_arrow(self.con, self.table, arrow_table([names[k] for k in keys], data, self.numbers),
                     self.created)
        self.created = True
        self.rows, self.numbers = [], []

    def _names(self, keys: list[tuple]) -> dict[tuple, str]:
        new = [k for k in keys if k not in self.names]
        if new:
            known = list(self.names)
            every = known + new
            resolved = column_names([".".join(map(str, k)) for k in every], nested=every)
            # names already given keep their name; only new keys are resolved against them
            for key, name in zip(every, resolved):
                self.names.setdefault(key, name)
        return self.names


class _Tables:
    """The top-level table and every child table of a file."""

    def __init__(self, con, prefix: str) -> None:
        self.con, self.prefix = con, prefix
        self.tables: dict[tuple, _Collector] = {}

    def get(self, path: tuple) -> _Collector:
        if path not in self.tables:
            self.tables[path] = _Collector(self.con, f"{self.prefix}_j{len(self.tables)}", path)
        return self.tables[path]

    def check_width(self, display: str) -> None:
        for path, collector in self.tables.items():
            if len(collector.keys) > MAX_COLUMNS:
                where = f" (in {'.'.join(path)})" if path else ""
                raise TooWide(f"{len(collector.keys):,}+ distinct keys{where}: more than the "
                              f"{MAX_COLUMNS:,} columns a table may have")

    def add_record(self, record: dict, number: int, path: tuple = (), parent: int | None = None) -> None:
        flat: dict[tuple, Any] = {}
        if parent is not None:
            flat[(PARENT,)] = parent
        children: list[tuple[tuple, list]] = []
        _flatten(record, (), flat, children)
        target = self.get(path)
        target.add(flat, number)
        for key, items in children:
            child = self.get(path + key)
            for item in items:
                self.add_record(item, child.count + 1, path + key, parent=number)


def _flatten(obj: dict, prefix: tuple, flat: dict, children: list) -> None:
    for key, value in obj.items():
        path = prefix + (str(key),)
        if isinstance(value, dict):
            if value:
                _flatten(value, path, flat, children)
            else:
                flat.setdefault(path, None)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            children.append((path, value))
        else:
            flat[path] = value


def _parts(tables: _Tables, file: InputFile, reader: str, rejects: list[Reject], stem: str,
           input_rows: int, notes: dict, row_label: str) -> list[RawPart]:
    parts = []
    for path, collector in tables.tables.items():
        collector.flush()
        if not collector.created and not (not path and rejects):
            continue
        if not collector.created:  # every record quarantined: a table of no rows holds them
            collector.flush(force=True)
        names = [collector.names[k] for k in collector.keys]
        originals = {collector.names[k]: ".".join(k) for k in collector.keys}
        child = bool(path)
        parts.append(RawPart(
            file, collector.table, f"{stem}__{snake_path(path)}" if child else stem, names, originals,
            reader, collector.count if child else input_rows, [] if child else rejects,
            {**notes, "child_of": stem, "key_path": ".".join(path)} if child else notes,
            display=f"{file.display}#{'.'.join(path)}" if child else "",
            row_label="element" if child else row_label,
        ))
    return parts


def _stem(file: InputFile) -> str:
    return file.local.stem if file.member is None else Path(file.member).stem


def read_jsonl(con, file: InputFile, prefix: str, scratch: Path) -> list[RawPart]:
    tables = _Tables(con, prefix)
    tables.get(())
    rejects: list[Reject] = []
    records = 0
    encoding = file.encoding or "utf-8"
    # bytes, decoded line by line: a line that does not decode is quarantined, not altered
    with open(file.local, "rb") as handle:
        for number, line in enumerate(_lines(handle, encoding), start=1):
            if not line.strip():
                continue
            records += 1
            try:
                text = line.decode(encoding).strip().lstrip("\ufeff") if isinstance(line, bytes) else line.strip()
            except UnicodeDecodeError as exc:
                rejects.append(Reject(file.display, f"not valid {encoding} (byte {line[exc.start]:#04x} "
                                      f"at column {exc.start + 1})", line.decode(encoding, "backslashreplace")
                                      .strip()[:4000], line=number))
                continue
            try:
                value = json.loads(text)
            except RecursionError:
                rejects.append(Reject(file.display, "nested deeper than Python's JSON parser allows",
                                      text[:4000], line=number))
                continue
            except ValueError as exc:
                rejects.append(Reject(file.display, f"invalid JSON: {exc}", text[:4000], line=number))
                continue
            if not isinstance(value, dict):
                rejects.append(Reject(file.display, f"not a JSON object but {type(value).__name__}",
                                      text[:4000], line=number))
                continue
            depth = nesting(value)
            if depth > MAX_NESTING:
                rejects.append(Reject(file.display, f"nested {depth}+ levels deep (more than {MAX_NESTING})",
                                      text[:4000], line=number))
                continue
            tables.add_record(value, number)
            tables.check_width(file.display)
    notes = {"encoding": encoding, "flatten": "nested keys joined with __; arrays of objects -> child tables"}
    return _parts(tables, file, "json-lines", rejects, _stem(file), records, notes, "line")


def _lines(handle, encoding: str):
    """Lines as bytes (decoded one by one, so a bad line is only that line); UTF-16/32 files,
    whose newlines are not single bytes, as text decoded strictly (a bad byte: a bad file)."""
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        yield from io.TextIOWrapper(handle, encoding=encoding, errors="strict", newline="")
    else:
        yield from handle


def _first_char(path: Path, encoding: str) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4096).decode(encoding, errors="ignore")
    return head.lstrip("\ufeff \t\r\n")[:1]


def read_json(con, file: InputFile, prefix: str, scratch: Path) -> list[RawPart]:
    encoding = file.encoding or "utf-8"
    notes: dict = {"encoding": encoding,
                   "flatten": "nested keys joined with __; arrays of objects -> child tables"}
    if _first_char(file.local, encoding) == "[":
        with open(file.local, "rb") as handle:
            try:
                return _read_elements(con, file, prefix, array_elements(handle, encoding), notes)
            except BadJson as exc:
                raise ValueError(f"invalid JSON: {exc}") from None
    with open(file.local, encoding=encoding, errors="strict") as handle:
        try:
            document = json.load(handle)
        except RecursionError:
            raise ValueError("invalid JSON: nested deeper than Python's JSON parser allows") from None
    if isinstance(document, dict) and len(document) == 1:
        (key, value), = document.items()
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            notes["records_under_key"] = key
            return _read_elements(con, file, prefix, iter(value), notes)
    if isinstance(document, dict) and not document:
        return [RawPart(file, "", _stem(file), [], {}, "json", 0, skipped="an empty JSON object")]
    if isinstance(document, dict) and nesting(document) > MAX_NESTING:
        raise ValueError(f"refused: the document is nested more than {MAX_NESTING} levels deep")
    return _read_elements(con, file, prefix, iter([document]), notes)


def _read_elements(con, file: InputFile, prefix: str, elements, notes: dict) -> list[RawPart]:
    """Objects are records; an array holding no object at all is a one-column table ``value``.

    Non-objects among objects are quarantined. They are staged as ``value`` rows while reading
    (memory stays bounded) and turned into quarantine at the end if objects were seen."""
    tables = _Tables(con, prefix)
    tables.get(())
    values = _Collector(con, f"{prefix}_jv", (VALUE,))
    rejects: list[Reject] = []
    count = 0
    for number, item in enumerate(elements, start=1):
        count = number
        if isinstance(item, TooDeep):
            rejects.append(Reject(file.display, f"element {number}: {item.reason}", item.raw, row=number))
        elif isinstance(item, dict):
            tables.add_record(item, number)
            tables.check_width(file.display)
        else:
            values.add({(VALUE,): item, (RAW,): json.dumps(item, ensure_ascii=False)[:4000]}, number)
    if count == 0:
        return [RawPart(file, "", _stem(file), [], {}, "json", 0, skipped="an empty JSON array: no records")]
    values.flush()
    top = tables.get(())
    raw = values.names.get((RAW,), "")
    if values.created and not top.created and not top.rows:
        notes = {**notes, "scalars": "an array of values, not objects: one column 'value'"}
        con.execute(f"ALTER TABLE {ident(values.table)} DROP COLUMN {ident(raw)}")
        del values.keys[(RAW,)]
        tables.tables[()] = values
    elif values.created:
        for row, raw in con.execute(f"SELECT _row_number, {ident(raw)} "
                                    f"FROM {ident(values.table)} ORDER BY 1").fetchall():
            rejects.append(Reject(file.display, f"element {row} is not a JSON object (the array "
                                  "mixes objects and other values)", (raw or "null")[:4000], row=row))
        con.execute(f"DROP TABLE {ident(values.table)}")
    return _parts(tables, file, "json", rejects, _stem(file), count, notes, "element")
