"""`gristmill ingest` through the real entry point: a folder into a new project, JSON and tables."""

import json
import subprocess
import sys


def gristmill(*args):
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True)


def _exports(folder):
    folder.mkdir()
    (folder / "orders.csv").write_text("Order ID;Amount;Day\n1;12,50;01.02.2024\n2;oops;02.02.2024\n"
                                       "3;7,25;03.02.2024\n" + "".join(f"{i};1,00;04.02.2024\n"
                                                                        for i in range(4, 104)))
    (folder / "notes.md").write_text("# not data\n")
    (folder / "events.jsonl").write_text('{"id": 1, "who": {"name": "a"}}\n{"id": 2\n')
    return folder


def test_ingest_a_folder_into_a_new_project_as_json(tmp_path, workspace):
    folder = _exports(tmp_path / "exports")
    out = gristmill("ingest", "shop", str(folder), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report) >= {"tables", "input_rows", "quarantined_rows", "bad_files", "skipped_files"}
    tables = {t["name"]: t for t in report["tables"]}
    assert tables["orders"]["columns"] == {"order_id": "BIGINT", "amount": "DOUBLE", "day": "DATE"}
    assert tables["orders"]["rows"] == 102 and tables["orders"]["sources"] == ["orders.csv"]
    assert tables["events"]["columns"] == {"id": "BIGINT", "who__name": "VARCHAR"}
    assert report["quarantined_rows"] == 2  # 'oops' as an amount, a truncated JSON line
    assert report["input_rows"] == sum(t["rows"] for t in report["tables"]) + report["quarantined_rows"]
    assert report["skipped_files"] == [{"path": "notes.md", "reason": "not data: a .md document"}]

    projects = json.loads(gristmill("projects", "--json").stdout)["projects"]
    assert [p["project"] for p in projects] == ["shop"] and projects[0]["role"] == "owner"
    rows = json.loads(gristmill("sql", "shop", "select reason from _quarantine order by 1", "--json").stdout)
    reasons = [r["reason"] for r in rows["rows"]]
    assert reasons[0].startswith("amount: \"oops\" is not a number") and "invalid JSON" in reasons[1]


def test_ingest_prints_the_accounting_table(tmp_path, workspace):
    folder = _exports(tmp_path / "exports")
    out = gristmill("ingest", "shop", str(folder))
    assert out.returncode == 0, out.stderr
    assert "Every row accounted for" in out.stdout and "orders" in out.stdout
    again = gristmill("ingest", "shop", str(folder), "--json")
    assert all(not t["changed"] for t in json.loads(again.stdout)["tables"])


def test_missing_folder_is_one_line(tmp_path, workspace):
    out = gristmill("ingest", "shop", str(tmp_path / "nowhere"))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"error: no such file or folder: {tmp_path / 'nowhere'}"]


def test_bad_input_of_every_kind_is_accounted_for_in_the_json_report(tmp_path, workspace):
    """Issue 16 through the real entry point: prose skipped, JSON values a table, a NUL line and a
    Latin-1 line quarantined, a 10,001-column header refused."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "README.txt").write_text("This folder holds the exports of the shop.\n"
                                       "Please do not edit them by hand, thanks.\nAsk Ann.\n")
    (folder / "ids.json").write_text('["a", "b", "c"]')
    (folder / "people.csv").write_bytes(b"id,name\n1,M\xc3\xbcller\n2,M\xfcller\n3,x\x00y\n4,Zo\xc3\xab\n")
    (folder / "wide.csv").write_text(",".join(f"c{i}" for i in range(10_001)) + "\n" + ",".join("1" * 10_001) + "\n")
    out = gristmill("ingest", "shop", str(folder), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    tables = {t["name"]: t for t in report["tables"]}
    assert tables["ids"]["columns"] == {"value": "VARCHAR"} and tables["ids"]["rows"] == 3
    assert (tables["people"]["rows"], tables["people"]["quarantined_rows"]) == (2, 2)
    assert [s["path"] for s in report["skipped_files"]] == ["README.txt"]
    assert report["skipped_files"][0]["reason"].startswith("not tabular")
    assert [b["path"] for b in report["bad_files"]] == ["wide.csv"]
    assert report["bad_files"][0]["reason"].startswith("refused: 10,001 columns")
    assert report["input_rows"] == 3 + 4 and report["warnings"] == []
    rows = json.loads(gristmill("sql", "shop", "select line, reason from _quarantine order by line", "--json").stdout)
    assert [r["line"] for r in rows["rows"]] == [3, 4]
