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

import json
from pathlib import Path
from typing import Any

from ingestion.discover import InputFile
from ingestion.names import column_names, snake_path
from ingestion.readers import RawPart, Reject
from ingestion.readers.staging import append_arrow, arrow_table

CHUNK_ROWS = 20_000
PARENT = "parent_row_number"


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

    def flush(self) -> None:
        if not self.rows:
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
        if not collector.created:
            continue
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
    with open(file.local, encoding=encoding, errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            records += 1
            try:
                value = json.loads(text)
            except ValueError as exc:
                rejects.append(Reject(file.display, f"invalid JSON: {exc}", text[:4000], line=number))
                continue
            if not isinstance(value, dict):
                rejects.append(Reject(file.display, f"not a JSON object but {type(value).__name__}",
                                      text[:4000], line=number))
                continue
            tables.add_record(value, number)
    notes = {"encoding": encoding, "flatten": "nested keys joined with __; arrays of objects -> child tables"}
    return _parts(tables, file, "json-lines", rejects, _stem(file), records, notes, "line")


def read_json(con, file: InputFile, prefix: str, scratch: Path) -> list[RawPart]:
    encoding = file.encoding or "utf-8"
    with open(file.local, encoding=encoding, errors="strict") as handle:
        document = json.load(handle)
    notes: dict = {"encoding": encoding,
                   "flatten": "nested keys joined with __; arrays of objects -> child tables"}
    if isinstance(document, dict) and len(document) == 1:
        (key, value), = document.items()
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            document = value
            notes["records_under_key"] = key
    items = document if isinstance(document, list) else [document]
    tables = _Tables(con, prefix)
    tables.get(())
    rejects = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict):
            tables.add_record(item, number)
        else:
            rejects.append(Reject(file.display, f"element {number} is not a JSON object but "
                                  f"{type(item).__name__}", json.dumps(item)[:4000], row=number))
    return _parts(tables, file, "json", rejects, _stem(file), len(items), notes, "element")
