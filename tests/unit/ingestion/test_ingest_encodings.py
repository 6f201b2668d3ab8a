"""The encoding is decided from the whole file; a line that does not decode, or holds a NUL byte,
is quarantined in its place and the rest of the file is read."""

from __future__ import annotations

import pytest

NAMES = ["Müller", "Größe", "Ärger", "Jürgen", "Köln", "Zoë", "François", "Ørsted", "Weiß", "Niño"]


def _lines(n):
    return [f"{i},{NAMES[i % len(NAMES)]} {i},{i}" for i in range(n)]


@pytest.mark.parametrize("odd", ["cp1252", "latin-1", "iso8859-15"])
@pytest.mark.parametrize("where", ["near the top", "beyond the sample"])
def test_utf8_file_with_a_few_lines_in_a_single_byte_codepage(odd, where, make_files, ingest_run, sql):
    n = 12_000 if where == "beyond the sample" else 300  # 12,000 lines are over 256 KB
    lines = _lines(n)
    odd_at = [5, 7] if where == "near the top" else [n - 3, n - 1]
    data = b"id,name,n\n" + b"".join(
        (line.encode(odd) if k in odd_at else line.encode("utf-8")) + b"\n" for k, line in enumerate(lines))
    report = ingest_run(make_files({"people.csv": data}))
    table = report.tables[0]
    assert (table.rows, table.quarantined_rows, report.input_rows) == (n - 2, 2, n)
    good = dict(sql("SELECT id, name FROM p.people"))
    assert all(good[k] == lines[k].split(",")[1] for k in range(n) if k not in odd_at)  # no mojibake
    quarantined = sql("SELECT line, row_number, raw, reason FROM p._quarantine ORDER BY line")
    assert [q[:2] for q in quarantined] == [(k + 2, k + 1) for k in odd_at]
    for (_, _, raw, reason), k in zip(quarantined, odd_at):
        assert reason.startswith("not valid utf-8")
        assert lines[k].split(",")[1] in reason  # the reason shows the line as cp1252 reads it
        assert "\\x" in raw  # the undecodable bytes as written


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_codepage_file_with_a_few_utf8_lines(encoding, make_files, ingest_run, sql, schema):
    lines = _lines(200)
    data = b"id,name,n\n" + b"".join(
        (line.encode("utf-8") if k in (10, 150) else line.encode(encoding)) + b"\n" for k, line in enumerate(lines))
    report = ingest_run(make_files({"people.csv": data}))
    assert report.tables[0].quarantined_rows == 2
    assert sql("SELECT name FROM p.people WHERE id = 0") == [("Müller 0",)]
    reasons = [r[0] for r in sql("SELECT reason FROM p._quarantine ORDER BY line")]
    assert all("valid UTF-8" in r and "Müller" in r or "Köln" in r or "Größe" in r for r in reasons)


def test_regression_mueller_is_not_decoded_as_a_single_byte_codepage(make_files, ingest_run, sql):
    """Regression (issue 16): UTF-8 with a few Latin-1 lines was decoded whole as cp1250."""
    data = "id,name\n".encode() + "".join(f"{i},Müller\n" for i in range(50)).encode() + "50,Müller\n".encode("latin-1")
    report = ingest_run(make_files({"k.csv": data}))
    assert sql("SELECT DISTINCT name FROM p.k") == [("Müller",)]
    assert report.quarantined_rows == 1


@pytest.mark.parametrize("bad", [b"\x00", b"\x00\x00\x00", b"\xff\xfe", b"\x81\x8d", b"\xc3\x28", b"ab\x00cd"])
@pytest.mark.parametrize("where", [1, 3, 40])
def test_stray_bytes_quarantine_their_line_and_keep_the_file(bad, where, make_files, ingest_run, sql):
    lines = [f"{i},{i * 2}" for i in range(50)]
    lines[where] = lines[where][:1] + bad.decode("latin-1") + lines[where][1:]
    data = b"a,b\n" + b"".join(line.encode("latin-1") + b"\n" for line in lines)
    report = ingest_run(make_files({"numbers.csv": data}))
    assert report.skipped_files == [] and report.bad_files == []
    table = report.tables[0]
    assert (table.rows, table.quarantined_rows, report.input_rows) == (49, 1, 50)
    assert table.columns == {"a": "BIGINT", "b": "BIGINT"}
    (line, row, raw), = sql("SELECT line, row_number, raw FROM p._quarantine")
    assert (line, row) == (where + 2, where + 1) and "\\x" in raw
    assert sql("SELECT count(*), sum(b) FROM p.numbers") == [(49, sum(i * 2 for i in range(50)) - where * 2)]


def test_regression_one_nul_byte_does_not_make_a_csv_binary(make_files, ingest_run, sql):
    """Regression (issue 16): one NUL made the whole CSV 'not data: binary'."""
    report = ingest_run(make_files({"n.csv": b"a,b\n1,2\n3,\x004\n5,6\n"}))
    assert report.skipped_files == []
    assert (report.input_rows, report.quarantined_rows) == (3, 1)
    assert "NUL" in sql("SELECT reason FROM p._quarantine")[0][0]


def test_binary_content_is_still_skipped(make_files, ingest_run):
    import random

    rng = random.Random(7)
    blob = bytes(rng.randrange(256) for _ in range(4096))
    report = ingest_run(make_files({"blob.dat": blob, "ok.csv": "a,b\n1,2\n"}))
    assert [s.path for s in report.skipped_files] == ["blob.dat"]
    assert report.skipped_files[0].reason.startswith("not data: binary")
