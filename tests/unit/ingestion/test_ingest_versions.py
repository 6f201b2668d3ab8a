"""Versions and lineage: unchanged files keep their version, changes make new ones, crashes are safe."""

from __future__ import annotations

import hashlib

import pytest

import ingestion.run


def _two_tables(make_files):
    return make_files({"a.csv": "id,v\n1,x\n2,y\n", "b.csv": "k,w\n1,2\n"})


def test_unchanged_folder_keeps_its_versions(make_files, ingest_run, lake, sql):
    folder = _two_tables(make_files)
    first = ingest_run(folder)
    second = ingest_run(folder)
    assert [(t.name, t.version, t.changed) for t in first.tables] == [("a", "v0001", True), ("b", "v0001", True)]
    assert [(t.name, t.version, t.changed, t.rows) for t in second.tables] == [
        ("a", "v0001", False, 2), ("b", "v0001", False, 1)]
    assert second.input_rows == 3
    assert sorted(p.name for p in (lake / "a").iterdir()) == ["v0001"]
    assert sql("SELECT count(*), sum(changed_tables) FROM p._ingest_runs") == [(2, 2)]


def test_a_changed_file_makes_a_new_version_of_its_table_only(make_files, ingest_run, sql):
    folder = _two_tables(make_files)
    ingest_run(folder)
    (folder / "a.csv").write_text("id,v\n1,x\n2,y\n3,z\n")
    report = ingest_run(folder)
    assert [(t.name, t.version, t.changed, t.rows) for t in report.tables] == [
        ("a", "v0002", True, 3), ("b", "v0001", False, 1)]
    assert sql("SELECT id, v FROM p.a ORDER BY id") == [(1, "x"), (2, "y"), (3, "z")]
    assert sql("SELECT name, version, rows FROM p._tables ORDER BY name") == [("a", "v0002", 3), ("b", "v0001", 1)]
    assert sql("SELECT version, rows FROM p._lineage WHERE table_name = 'a' ORDER BY version") == [
        ("v0001", 2), ("v0002", 3)]


def test_lineage_lists_path_size_and_sha256(make_files, ingest_run, sql):
    folder = make_files({"sub/data.csv": "id\n1\n2\n", "other.csv": "q\nx\n"})
    ingest_run(folder)
    rows = sql("SELECT table_name, path, size, sha256, reader FROM p._lineage ORDER BY table_name")
    expected = []
    for table, rel in (("data", "sub/data.csv"), ("other", "other.csv")):
        data = (folder / rel).read_bytes()
        expected.append((table, rel, len(data), hashlib.sha256(data).hexdigest(), "duckdb.read_csv"))
    assert rows == expected


def test_quarantine_view_names_table_and_version(make_files, ingest_run, sql):
    folder = make_files({"r.csv": "a,b\n1,2\n3\n"})
    ingest_run(folder)
    (folder / "r.csv").write_text("a,b\n1,2\n3\n4,5,6\n")
    ingest_run(folder)  # the view shows the quarantine of current versions only
    assert sql("SELECT table_name, version, line, raw FROM p._quarantine ORDER BY line") == [
        ("r", "v0002", 3, "3"), ("r", "v0002", 4, "4,5,6")]


def test_a_crash_mid_run_leaves_the_previous_views_intact(monkeypatch, make_files, ingest_run, sql):
    folder = _two_tables(make_files)
    ingest_run(folder)
    (folder / "a.csv").write_text("id,v\n9,new\n")
    (folder / "b.csv").write_text("k,w\n7,8\n9,10\n")
    real, calls = ingestion.run.write_version, []

    def crash_on_second(*args, **kwargs):
        calls.append(args[1].name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    # run.py calls the name it imported from ingestion.write, so patch it where it is looked up
    monkeypatch.setattr(ingestion.run, "write_version", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        ingest_run(folder)
    assert calls == ["a", "b"]
    assert sql("SELECT id, v FROM p.a ORDER BY id") == [(1, "x"), (2, "y")]
    assert sql("SELECT k, w FROM p.b") == [(1, 2)]
    assert sql("SELECT name, version FROM p._tables ORDER BY name") == [("a", "v0001"), ("b", "v0001")]
    monkeypatch.setattr(ingestion.run, "write_version", real)
    report = ingest_run(folder)  # the next run completes the change
    assert [(t.name, t.version, t.changed) for t in report.tables] == [("a", "v0002", True), ("b", "v0002", True)]
    assert sql("SELECT k FROM p.b ORDER BY k") == [(7,), (9,)]


def test_forcing_a_type_makes_a_new_version(make_files, ingest_run):
    from ingestion import SourceSpec

    folder = make_files({"z.csv": "id,code\n1,100\n2,200\n"})
    assert ingest_run(folder).tables[0].columns["code"] == "BIGINT"
    report = ingest_run(SourceSpec(path=folder, types={"code": "text"}))
    assert (report.tables[0].version, report.tables[0].columns["code"]) == ("v0002", "VARCHAR")


def test_two_folders_with_the_same_file_name_do_not_swap_data(make_files, ingest_run, sql, tables):
    crm = make_files({"data.csv": "id,name\n1,a\n2,b\n"}, folder="crm")
    erp = make_files({"data.csv": "sku,qty\nx,1\ny,2\nz,3\n"}, folder="erp")
    ingest_run(crm)
    ingest_run(erp)
    report = ingest_run(crm)  # crm's files did not change
    crm_tables = [t for t in tables(report).values() if "name" in t.columns]
    assert len(crm_tables) == 1, [t.columns for t in report.tables]
    assert sql(f'SELECT id, name FROM p."{crm_tables[0].name}" ORDER BY id') == [(1, "a"), (2, "b")]
