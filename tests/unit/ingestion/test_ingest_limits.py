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
