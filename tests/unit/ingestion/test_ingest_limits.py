"""Absurd widths are refused with a clear reason; JSON arrays are read element by element."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest

from ingestion.readers import MAX_COLUMNS


@pytest.mark.parametrize("width, delim", [(200_000, ","), (MAX_COLUMNS + 1, ";"), (50_000, "\t")])
def test_a_csv_header_wider_than_the_limit_is_refused(width, delim, make_files, ingest_run):
    """Regression (issue 16): a 200k-column header exhausted memory."""
    header = delim.join(f"c{i}" for i in range(width))
    report = ingest_run(make_files({"wide.csv": header + "\n" + delim.join("1" * width) + "\n",
                                    "ok.csv": "a,b\n1,2\n"}))
    assert [t.name for t in report.tables] == ["ok"]
    (bad,) = report.bad_files
    assert bad.path == "wide.csv" and bad.reason.startswith("refused: ")
    assert f"more than the {MAX_COLUMNS:,}" in bad.reason


def test_a_wide_csv_under_the_limit_is_read(make_files, ingest_run):
    width = 60
    header = ",".join(f"c{i}" for i in range(width))
    report = ingest_run(make_files({"w.csv": header + "\n" + ",".join(["1"] * width) + "\n"}))
    assert len(report.tables[0].columns) == width


def test_json_with_more_keys_than_the_limit_is_refused(make_files, ingest_run):
    records = [{f"k{i}_{j}": j for j in range(50)} for i in range(MAX_COLUMNS // 50 + 2)]
    report = ingest_run(make_files({"keys.jsonl": "\n".join(json.dumps(r) for r in records) + "\n"}))
    (bad,) = report.bad_files
    assert bad.reason.startswith("refused: ") and "distinct keys" in bad.reason


def test_wide_parquet_is_refused(make_files, ingest_run):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({f"c{i}": [1] for i in range(MAX_COLUMNS + 1)}), buf)
    report = ingest_run(make_files({"w.parquet": buf.getvalue()}))
    assert report.bad_files[0].reason.startswith(f"refused: {MAX_COLUMNS + 1:,} columns")


def _array(n):
    return "[" + ",\n".join(json.dumps({"id": i, "who": {"name": f"n{i}", "tags": ["a", str(i)]},
                                        "amount": i * 0.5, "note": "x" * (i % 7)}) for i in range(n)) + "]"


@pytest.mark.parametrize("chunk", [7, 64, 4096])
def test_array_elements_across_block_boundaries(chunk, monkeypatch):
    """The streaming parser sees the file in blocks of ``chunk`` characters: numbers, strings and
    nested values cut at a boundary still parse, exactly as ``json.loads`` reads them."""
    from ingestion.readers import jsonstream

    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    text = _array(300).replace("0.5", "0.500001e0")
    got = list(jsonstream.array_elements(io.BytesIO(text.encode())))
    assert got == json.loads(text)


@pytest.mark.parametrize("text, error", [("[1, 2", "expected"), ("[1, {2", "Expecting property name"), ("[1 2]", "expected ','"),
                                         ("[1] 2", "extra data"), ('{"a": 1}', "not a JSON array")])
def test_invalid_arrays_raise_with_the_place(text, error):
    from ingestion.readers.jsonstream import BadJson, array_elements

    with pytest.raises(BadJson, match=error):
        list(array_elements(io.BytesIO(text.encode())))


def test_a_json_array_is_read_with_memory_bounded_by_a_chunk_not_the_file(monkeypatch, make_files, ingest_run,
                                                                          sql):
    """A top-level array is never ``json.load``-ed whole: Python's peak allocation while ingesting
    an array 8x larger stays about the same (~2 MB: a 1 MB read block and its decoded text), below
    a third of the file (a whole parse holds
    several times the file as objects)."""
    from ingestion.readers import jsonfiles, jsonstream

    monkeypatch.setattr(jsonfiles, "CHUNK_ROWS", 500)
    monkeypatch.setattr(jsonstream, "CHUNK", 1 << 16)
    monkeypatch.setattr(json, "load", lambda *a, **k: pytest.fail("json.load of a whole array"))
    ingest_run(make_files({"warm.json": _array(10)}, folder="warm"))  # imports are not the point
    peaks = {}
    for n in (10_000, 80_000):
        text = _array(n)
        folder = make_files({f"big{n}.json": text}, folder=f"in{n}")
        tracemalloc.start()
        try:
            report = ingest_run(folder)
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert report.tables[0].rows == n
    assert peaks[80_000] < 1.5 * peaks[10_000], peaks
    assert peaks[80_000] < len(text) / 3, (peaks, len(text))
    assert sql("SELECT sum(id), max(who__name) FROM p.big80000") == [(sum(range(80_000)), "n9999")]


def test_a_600_column_csv_is_typed_column_by_column_and_every_row_accounted_for(make_files, ingest_run, sql):
    """Wide tables are cleaned, typed and written in batches of columns (ingestion.infer.BATCH):
    every column gets its own type across the batch seams, and the rows whose value fails its
    column's type are quarantined with file, line and reason, the others kept in file order."""
    width, rows = 600, 60
    kinds = ["BIGINT", "DOUBLE", "VARCHAR", "DATE", "BOOLEAN"]
    odd = {95: 17, 100: 40, 195: 41, 300: 59, 595: 41}  # integer column -> the row of its bad value

    def value(c, r):
        if odd.get(c) == r:
            return "oops"  # one bad integer in a column (of 60: the column stays integer)
        return [str(r * 3 + c), f"{r + c}.25", f"t{(r + c) % 7}", f"2024-03-{1 + (r + c) % 28:02d}",
                ("yes", "no")[(r + c) % 2]][c % 5]

    lines = [",".join(f"col{c}" for c in range(width))]
    lines += [",".join(value(c, r) for c in range(width)) for r in range(rows)]
    report = ingest_run(make_files({"wide.csv": "\n".join(lines) + "\n"}))
    (table,) = report.tables
    assert list(table.columns) == [f"col{c}" for c in range(width)]
    assert [table.columns[f"col{c}"] for c in range(width)] == [kinds[c % 5] for c in range(width)]
    bad = sorted(set(odd.values()))
    assert (table.rows, table.quarantined_rows, report.input_rows) == (rows - len(bad), len(bad), rows)
    got = sql("SELECT file, line, reason FROM p._quarantine ORDER BY line")
    assert [(file, line) for file, line, _ in got] == [("wide.csv", r + 2) for r in bad]  # header: line 1
    assert [[part.split(":")[0] for part in reason.split("; ")] for _, _, reason in got] == [
        ["col95"], ["col100"], ["col195", "col595"], ["col300"]]
    assert all('"oops" is not an integer' in reason for _, _, reason in got)
    kept = [r for r in range(rows) if r not in bad]
    assert sql("SELECT col0, col597, col599 FROM p.wide") == [
        (r * 3, f"t{(r + 597) % 7}", r % 2 == 1) for r in kept]


@pytest.mark.parametrize("ragged", [False, True])
def test_batched_typing_gives_the_same_table_as_one_statement(ragged, tmp_path, monkeypatch):
    """Columns cleaned, sampled and counted a few at a time (``BATCH`` 3, samples of 5 values, so
    that sparse columns are sampled further down on their own) give the same data, types,
    interpretations and quarantine as every column in one statement, rows in file order (also
    when records are rejected: ``ragged``, unquoted ``$1,250.5`` adding a field)."""
    import pyarrow.parquet as pq

    from ingestion import SourceSpec, ingest, infer

    rows = ["id,amount,when,flag,note,sparse,code,eu,late"]
    for r in range(60):
        rows.append(",".join([
            str(r), "oops" if r == 7 else (f"${r},250.5" if ragged else f"\"${r},250.5\"") if r % 3 else f"{r}.5",
            f"2024-02-{1 + r % 28:02d}",
            ("yes", "no", "NA")[r % 3], f" word {r} ", str(r) if r > 30 else "", f"{r:05d}",
            f"\"{r},5\"", "x" if r == 59 else str(r)]))
    src = tmp_path / "in"
    src.mkdir()
    (src / "t.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(infer, "SAMPLE", 5)

    def run(batch, name):
        monkeypatch.setattr(infer, "BATCH", batch)
        lake = tmp_path / name
        report = ingest([SourceSpec(path=src)], project="p", lake_dir=lake, catalog=tmp_path / f"{name}.duckdb")
        folder = lake / "t" / report.tables[0].version
        schema = json.loads((folder / "schema.json").read_text())
        return (pq.read_table(folder / "data.parquet").to_pylist(), pq.read_table(folder / "quarantine.parquet").to_pylist(),
                [(c["name"], c["type"], c["interpretation"], c["failed"]) for c in schema["columns"]],
                report.input_rows)

    batched, whole = run(3, "batched"), run(1000, "whole")
    for got, want in zip(batched, whole):
        assert got == want
    data, quarantine, columns, records = whole
    assert quarantine and (ragged or columns[1][1] == "DOUBLE")  # something quarantined; amount typed
    numbers = [r["_row_number"] for r in data]
    assert numbers == sorted(numbers) and len(numbers) + len(quarantine) == records
