"""Safety: hostile names, symlinks out of the folder, zip-slip, decompression bombs, bad sources."""

from __future__ import annotations

import gzip
import io
import os
import zipfile

import pytest

import ingestion.discover
from ingestion import IngestError, SourceSpec


def test_sql_in_a_file_name_is_just_a_name(make_files, ingest_run, sql, tables):
    ingest_run(make_files({"y.csv": "a,b\n1,2\n"}, folder="first"))
    folder = make_files({'x"; DROP TABLE y; --.csv': "c,d\n3,4\n", "it's.csv": "e\n5\n6\n"})
    report = ingest_run(folder)
    found = tables(report)
    assert set(found) == {"x_drop_table_y", "it_s"}
    assert found["x_drop_table_y"].sources == ['x"; DROP TABLE y; --.csv']
    assert sql('SELECT c, d, _source_file FROM p."x_drop_table_y"') == [(3, 4, 'x"; DROP TABLE y; --.csv')]
    assert sql("SELECT a, b FROM p.y") == [(1, 2)]  # the earlier table is untouched
    assert sql("SELECT sum(e) FROM p.it_s") == [(11,)]


def test_symlink_pointing_outside_the_folder_is_refused(tmp_path, make_files, ingest_run, tables):
    secret = tmp_path / "secret.csv"
    secret.write_text("user,password\nroot,hunter2\n")
    folder = make_files({"ok.csv": "a\n1\n"})
    os.symlink(secret, folder / "link.csv")
    os.symlink(folder / "ok.csv", folder / "inner_link.csv")  # inside the folder: fine
    report = ingest_run(folder)
    (bad,) = report.bad_files
    assert bad.path == "link.csv"
    assert bad.reason.startswith("refused: a symlink pointing outside the input folder")
    assert "secret" not in tables(report) and "link" not in tables(report)
    assert sum(t.rows for t in report.tables) == 2  # ok.csv and inner_link.csv


def test_zip_slip_members_are_refused(tmp_path, make_files, ingest_run):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("../evil.csv", "e,f\n1,2\n")
        archive.writestr("/etc/abs.csv", "e,f\n1,2\n")
        archive.writestr("good.csv", "g,h\n1,2\n")
    report = ingest_run(make_files({"slip.zip": buf.getvalue()}))
    reasons = {b.path: b.reason for b in report.bad_files}
    assert set(reasons) == {"slip.zip!/../evil.csv", "slip.zip!//etc/abs.csv"}
    assert all("leaves the archive" in r for r in reasons.values())
    assert [t.name for t in report.tables] == ["good"]
    assert list(tmp_path.rglob("evil.csv")) == [] and list(tmp_path.rglob("abs.csv")) == []


def test_zip_bomb_is_refused(monkeypatch, make_files, ingest_run):
    monkeypatch.setattr(ingestion.discover, "RATIO_FLOOR", 1024 * 1024)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.csv", "w") as member:
            block = bytes(1024 * 1024)
            for _ in range(70):  # ~70 MB of zeros, ~70 KB packed
                member.write(block)
        archive.writestr("fine.csv", "a,b\n1,2\n")
    report = ingest_run(make_files({"bomb.zip": buf.getvalue()}))
    (bad,) = report.bad_files
    assert bad.path == "bomb.zip!/zeros.csv"
    assert "expands over 200x" in bad.reason and "decompression bomb" in bad.reason
    assert [t.name for t in report.tables] == ["fine"]


def test_gzip_bomb_is_refused(monkeypatch, make_files, ingest_run):
    monkeypatch.setattr(ingestion.discover, "RATIO_FLOOR", 1024 * 1024)
    packed = gzip.compress(b"a,b\n" + b"1,2\n" * 1_000_000)
    report = ingest_run(make_files({"big.csv.gz": packed}))
    (bad,) = report.bad_files
    assert bad.path == "big.csv.gz" and "decompression bomb" in bad.reason
    assert report.tables == [] and report.input_rows == 0


def test_corrupt_archives_are_bad_files_not_crashes(make_files, ingest_run):
    report = ingest_run(make_files({"broken.gz": b"\x1f\x8b" + b"garbage" * 10, "broken.zip": b"PK\x03\x04junk",
                                    "ok.csv": "a\n1\n"}))
    assert {b.path for b in report.bad_files} == {"broken.gz", "broken.zip"}
    assert [t.name for t in report.tables] == ["ok"]


@pytest.mark.parametrize("path", ["does/not/exist", "does/not/exist/*.csv"])
def test_missing_source_raises_a_one_line_ingest_error(tmp_path, ingest_run, path):
    with pytest.raises(IngestError) as info:
        ingest_run(SourceSpec(path=tmp_path / path))
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / path) in message


def test_empty_folder_raises_ingest_error(tmp_path, ingest_run):
    (tmp_path / "void").mkdir()
    with pytest.raises(IngestError, match="holds no files"):
        ingest_run(tmp_path / "void")
