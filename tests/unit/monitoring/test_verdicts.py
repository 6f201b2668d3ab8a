"""Issue 16, monitoring: one verdict everywhere, bad files and infinities reported, small windows
not judged. Real Evidently reports on a small real workspace (no mocks, no model registered)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from gristmill.spec import parse_spec
from monitoring import checks, history
from monitoring.drift import build_drift_report, read_saved_verdict
from monitoring.jobs import JobSpec
from monitoring.runner import monitoring_dir, run_job

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
SPEC = {"project": "shop", "sources": [{"path": "x.csv"}], "entity": {"name": "customer", "key": "id"},
        "features": [{"table": "customers"}], "label": {"table": "labels", "target": "churned", "timestamp": "as_of"}}
NUMBERS = [f"customers__n{i}" for i in range(6)]
CATEGORIES = ["customers__plan", "customers__region"]
FEATURES = NUMBERS + CATEGORIES


def frame(seed: int, n: int, drifted: tuple[str, ...] = ()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = {c: rng.normal(10 if c in drifted else 0, 1, n) for c in NUMBERS}
    out["customers__plan"] = rng.choice(["basic", "plus", "pro"], n,
                                        p=[0.1, 0.2, 0.7] if "customers__plan" in drifted else [0.6, 0.3, 0.1])
    out["customers__region"] = rng.choice(["n", "s", "e", "w"], n)
    return pd.DataFrame(out)


@pytest.fixture
def shop(workspace, add_tables, tmp_path, monkeypatch):
    monkeypatch.setenv("GRISTMILL_MONITORING_JOBS", str(tmp_path / "jobs"))
    ws = workspace
    ws.spec_path("shop").parent.mkdir(parents=True)
    ws.spec_path("shop").write_text(yaml.safe_dump(SPEC))
    train = frame(1, 3000)
    train.insert(0, "id", [f"c{i}" for i in range(3000)])
    train["churned"] = np.random.default_rng(2).random(3000) < 0.3
    ws.datasets("shop").mkdir(parents=True)
    train.to_parquet(ws.datasets("shop") / "shop-abc-20261101T000000.parquet")
    (ws.datasets("shop") / "shop-abc-20261101T000000.json").write_text(json.dumps(
        {"key": "id", "target": "churned", "features": FEATURES}))
    add_tables(ws, "shop", {"labels": pd.DataFrame({"id": ["c0"], "as_of": [NOW], "churned": [True]})})
    return ws, parse_spec(SPEC, "shop.yaml")


def log_predictions(ws, rows: pd.DataFrame, at: datetime) -> Path:
    folder = ws.root / "predictions" / "shop" / f"date={at:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(rows)
    table = pa.Table.from_pandas(rows.assign(_ts=[at] * n, _endpoint="predict", _entity_id=[None] * n,
                                             _model_version="1", _latency_ms=1.0, _prediction=["True"] * n),
                                 preserve_index=False)
    path = folder / f"{at:%H%M%S}-{n}.parquet"
    pq.write_table(table, path)
    return path


def html_verdict(html_path: Path) -> dict:
    """What Evidently's HTML says: 'Dataset Drift is [NOT] detected' and 'N out of M' columns."""
    html = Path(html_path).read_text()
    dataset = re.search(r"Dataset Drift is (NOT detected|detected)", html)
    counts = re.search(r"Drift is detected for [0-9.]+% of columns \((\d+) out of (\d+)\)", html)
    assert dataset and counts, "Evidently's HTML no longer carries its verdict in this form"
    return {"dataset_drift": dataset.group(1) == "detected", "drifted": int(counts.group(1)),
            "compared_columns": int(counts.group(2))}


def gristmill(*args):
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True)


# -- 1. one verdict, the same in the CLI, --json, history and Evidently's JSON and HTML -------------
EMPTY_SHAPES = {
    # what makes a column have no values on one side
    "current all NaN": lambda cur: cur.assign(customers__n4=np.nan, customers__n5=np.nan),
    "current all None (categorical)": lambda cur: cur.assign(customers__region=None),
    "current all infinite": lambda cur: cur.assign(customers__n4=np.inf, customers__n5=-np.inf),
    "current column absent": lambda cur: cur.drop(columns=["customers__n4", "customers__n5"]),
}


@pytest.mark.parametrize("shape", list(EMPTY_SHAPES))
def test_the_verdict_counts_compared_columns_only_and_evidently_says_the_same(shop, shape):
    ws, spec = shop
    # 3 of 8 features drift; 2 (or 1) have no values in the window: the share is 3/6 (or 3/7), not 3/8
    current = EMPTY_SHAPES[shape](frame(3, 1500, drifted=("customers__n0", "customers__n1", "customers__plan")))
    log_predictions(ws, current, NOW - timedelta(hours=1))
    summary = run_job(ws, spec, JobSpec(name="j", thresholds={"drift_share": 0.45}), now=NOW)

    drift = summary["drift"]
    empty = [c["column"] for c in drift["not_compared"]]
    assert empty and all(c not in [r["column"] for r in drift["columns"]] for c in empty)
    assert drift["compared_columns"] == len(FEATURES) - len(empty)
    assert sorted(drift["drifted_columns"]) == ["customers__n0", "customers__n1", "customers__plan"]
    assert drift["dataset_drift"] is (3 / drift["compared_columns"] >= 0.45)
    saved, shown = read_saved_verdict(summary["evidently"]["json"]), html_verdict(summary["evidently"]["html"])
    row = history.read(ws.root, "shop", "j")[-1]
    for view in (saved, shown):
        assert view["compared_columns"] == drift["compared_columns"] == row["compared_columns"]
        assert view["dataset_drift"] is drift["dataset_drift"] is bool(row["dataset_drift"])
    assert shown["drifted"] == saved["drifted"] == len(drift["drifted_columns"]) == len(row["drifted_columns"])
    assert saved["drift_share"] == pytest.approx(drift["drift_share"]) == row["drift_share"]
    assert summary["evidently"]["agrees"] is True and row["evidently_agrees"] == 1
    assert row["verdict"] == drift["verdict"]["text"]


def test_regression_29_of_65_vs_29_of_46_the_cli_json_history_and_html_agree(shop, tmp_path):
    """Issue 16: 3 drifted of 5 with values (+3 all-missing) was '3/8, share 0.38, no drift' in the
    CLI while Evidently's HTML said 'detected, 3 of 5, share 0.6'."""
    ws, _ = shop
    current = frame(4, 1500, drifted=("customers__n0", "customers__n1", "customers__plan"))
    current = current.assign(customers__n3=np.nan, customers__n4=np.nan, customers__n5=np.nan)
    log_predictions(ws, current, datetime.now(timezone.utc) - timedelta(minutes=5))
    (tmp_path / "jobs" / "shop").mkdir(parents=True)
    (tmp_path / "jobs" / "shop" / "j.yaml").write_text(yaml.safe_dump({"name": "j", "thresholds": {"drift_share": 0.5}}))

    out = gristmill("monitor", "run", "shop", "--job", "j")
    assert out.returncode == 0, out.stderr
    line = out.stdout.splitlines()[0]
    assert "DATASET DRIFT: 3/5 columns drifted (share 0.60 >= 0.50)" in line, line
    assert "3 columns not compared" in line
    (row,) = history.read(ws.root, "shop", "j")
    shown = html_verdict(row["html_path"])
    assert shown == {"dataset_drift": True, "drifted": 3, "compared_columns": 5}
    assert row["dataset_drift"] == 1 and row["drift_share"] == pytest.approx(0.6) and row["verdict"] in line
    listed = json.loads(gristmill("monitor", "history", "shop", "--json").stdout)["runs"][-1]
    assert listed["compared_columns"] == 5 and listed["dataset_drift"] == 1
    summary = json.loads(Path(row["summary_path"]).read_text())
    assert summary["drift"]["dataset_drift"] is True and summary["drift"]["compared_columns"] == 5


def test_a_large_window_records_whether_evidentlys_smaller_report_agrees(shop):
    ws, spec = shop
    log_predictions(ws, frame(5, 3000, drifted=("customers__n0",)), NOW - timedelta(hours=1))
    summary = run_job(ws, spec, JobSpec(name="big", report_rows=500), now=NOW)  # report on 500 of 3000
    saved = read_saved_verdict(summary["evidently"]["json"])
    assert summary["evidently"]["agrees"] is (saved["drifted_columns"] == summary["drift"]["drifted_columns"]
                                              and saved["compared_columns"] == summary["drift"]["compared_columns"])
    if not summary["evidently"]["agrees"]:
        assert "differs from the verdict" in summary["message"]


# -- 2. unreadable log files skipped and reported; infinities out of range -------------------------
def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "not parquet":
        path.write_bytes(b"this is not a parquet file\n" * 10)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "bad footer":
        path.write_bytes(data[:-12] + b"\x00" * 8 + data[-4:])
    elif how == "bad pages":
        mid = len(data) // 3
        path.write_bytes(data[:mid] + bytes(255 - b for b in data[mid:mid + 200]) + data[mid + 200:])


@pytest.mark.parametrize("how", ["truncated", "not parquet", "empty", "bad footer", "bad pages"])
def test_an_unreadable_log_file_is_skipped_and_reported_in_every_later_run(shop, how):
    ws, spec = shop
    log_predictions(ws, frame(6, 200), NOW - timedelta(hours=2))
    bad = log_predictions(ws, frame(7, 100), NOW - timedelta(hours=1))
    log_predictions(ws, frame(8, 200), NOW - timedelta(minutes=30))
    corrupt(bad, how)

    for minute in (0, 1):  # every later run too
        summary = run_job(ws, spec, JobSpec(), now=NOW + timedelta(minutes=minute))
        assert summary["status"] in ("ok", "alert")
        bad_files = summary["window"]["bad_files"]
        assert [b["file"] for b in bad_files] == [str(bad)] and bad_files[0]["reason"]
        assert summary["window"]["rows"] == 400
        assert "1 unreadable prediction-log files skipped" in summary["message"]
        row = history.read(ws.root, "shop")[-1]
        assert row["n_bad_files"] == 1 and row["bad_files"][0]["file"] == str(bad)


def test_a_corrupt_current_file_is_a_one_line_error(shop, tmp_path):
    ws, _ = shop
    path = tmp_path / "batch.parquet"
    path.write_bytes(b"PAR1 garbage")
    out = gristmill("monitor", "run", "shop", "--current", str(path))
    assert out.returncode == 1 and "cannot be read as PARQUET" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert history.read(ws.root, "shop")[-1]["status"] == "error"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_infinities_in_a_batch_are_out_of_range_counted_and_reported(shop, tmp_path, dtype):
    ws, spec = shop
    batch = frame(9, 400)
    batch["customers__n0"] = batch["customers__n0"].astype(dtype)
    batch.loc[:9, "customers__n0"] = np.inf
    batch.loc[10:14, "customers__n0"] = -np.inf
    batch["customers__n1"] = np.array([np.inf] * 400, dtype=dtype)  # no finite value at all
    path = tmp_path / "batch.parquet"
    batch.to_parquet(path)

    summary = run_job(ws, spec, JobSpec(name="batch"), current_file=path, now=NOW)  # crashed in binning

    quality = {q["column"]: q for q in summary["quality"]}
    assert quality["customers__n0"]["non_finite"] == 15
    assert quality["customers__n0"]["out_of_range_share"] >= 15 / 400
    assert quality["customers__n1"]["non_finite"] == 400 and quality["customers__n1"]["out_of_range_share"] == 1.0
    assert quality["customers__n0"]["missing_share"] == 0.0  # infinite is not missing
    assert summary["non_finite_values"] == 415 and history.read(ws.root, "shop")[-1]["n_non_finite"] == 415
    assert "customers__n1" in [c["column"] for c in summary["drift"]["not_compared"]]
    assert any("customers__n1: 100.0% of values outside the reference range (400 infinite)" == r
               for r in summary["alerts"]["reasons"])
    assert summary["evidently"]["agrees"] is True


@pytest.mark.parametrize("values", [[np.inf], [-np.inf], [np.inf, -np.inf, np.nan]])
def test_evidentlys_report_takes_infinities_on_either_side(tmp_path, values):
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 1500), "b": rng.normal(0, 1, 1500)})
    cur = pd.DataFrame({"a": rng.normal(0, 1, 300), "b": rng.normal(0, 1, 300)})
    for i, v in enumerate(values):
        ref.loc[i, "a"] = v
        cur.loc[i, "b"] = v
    result, _ = build_drift_report(ref, cur, tmp_path, name="inf", drift_share_threshold=0.5)
    n_inf = sum(1 for v in values if np.isinf(v))
    assert result.non_finite == {"b": n_inf}
    assert [c.column for c in result.columns] == ["a", "b"] and result.json_path.is_file()


# -- 3. the sample size and its uncertainty in every verdict; too few rows are not judged -----------
@pytest.mark.parametrize("n", [1, 2, 5, 29])
def test_a_window_below_the_minimum_is_not_judged_and_raises_no_alert(shop, n):
    ws, spec = shop
    log_predictions(ws, frame(10, n, drifted=tuple(FEATURES)), NOW - timedelta(hours=1))
    job = JobSpec(name="tiny", current={"min_rows": 1}, alerts=[{"type": "file", "path": "a.jsonl"}])

    summary = run_job(ws, spec, job, now=NOW)  # a 1-row window raised drift alerts

    verdict = summary["drift"]["verdict"]
    assert summary["status"] == "ok" and summary["alerts"] is None
    assert verdict["judged"] is False and verdict["dataset_drift"] is None and verdict["rows"] == n
    assert verdict["text"].startswith(f"too few rows to judge ({n} < {checks.MIN_ROWS_TO_JUDGE} rows)")
    assert f"{n} rows (\u00b1" in verdict["text"] and verdict["epsilon"] == pytest.approx(
        checks.dkw_epsilon(n, 0.05))
    assert summary["evidently"]["html"] is None  # no report states a verdict on so few rows
    row = history.read(ws.root, "shop")[-1]
    assert row["dataset_drift"] is None and row["verdict"] == verdict["text"] and row["window_error"] > 0.2
    assert not (ws.root / "monitoring" / "alerts" / "a.jsonl").exists()
    out = gristmill("monitor", "history", "shop", "--json")
    assert json.loads(out.stdout)["runs"][-1]["verdict"].startswith("too few rows to judge")


def test_a_window_at_the_minimum_is_judged_and_states_its_error(shop):
    ws, spec = shop
    n = checks.MIN_ROWS_TO_JUDGE
    log_predictions(ws, frame(11, n, drifted=tuple(FEATURES)), NOW - timedelta(hours=1))
    summary = run_job(ws, spec, JobSpec(name="small", current={"min_rows": 1}), now=NOW)
    verdict = summary["drift"]["verdict"]
    assert verdict["judged"] is True and summary["status"] == "alert" and verdict["dataset_drift"] is True
    eps = checks.dkw_epsilon(n, 0.05)
    assert f"{n} rows (\u00b1{eps:.2f} at 95%)" in verdict["text"]


def test_the_verdict_states_size_and_error_for_every_shape():
    cols = [{"column": c, "drifted": i < 2} for i, c in enumerate("abcd")]
    for rows in (0, 1, 29, 30, 1000, 200_000):
        v = checks.verdict(cols, 0.5, rows=rows, reference_rows=3000)
        assert v["judged"] is (rows >= 30)
        assert v["dataset_drift"] is (True if rows >= 30 else None)
        assert (v["epsilon"] is None) if rows == 0 else v["epsilon"] == pytest.approx(checks.dkw_epsilon(rows, 0.05))
        assert f"{rows} rows" in v["text"] and "2/4 columns drifted (share 0.50" in v["text"]
    none = checks.verdict([], 0.5, rows=100, reference_rows=10, not_compared=[{"column": "a", "reason": "x"}])
    assert none["judged"] is False and "no column has values on both sides" in none["text"]


def test_an_older_history_file_gains_the_new_columns(tmp_path):
    import sqlite3

    path = history.history_db(tmp_path)
    path.parent.mkdir(parents=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, project TEXT NOT NULL, job TEXT NOT NULL, "
                "status TEXT NOT NULL, started_at TEXT NOT NULL)")
    con.commit()
    con.close()
    history.append(tmp_path, {"run_id": "r", "project": "p", "job": "j", "status": "ok", "started_at": "x",
                              "bad_files": [{"file": "f", "reason": "r"}], "n_bad_files": 1})
    assert history.read(tmp_path, "p")[0]["bad_files"] == [{"file": "f", "reason": "r"}]


def test_the_reference_lists_its_columns_without_values(shop):
    ws, spec = shop
    path = sorted(ws.datasets("shop").glob("*.parquet"))[0]
    train = pd.read_parquet(path).assign(customers__n5=np.nan)
    train.to_parquet(path)
    log_predictions(ws, frame(12, 100), NOW - timedelta(hours=1))
    summary = run_job(ws, spec, JobSpec(), now=NOW)
    assert {"column": "customers__n5", "reason": "no values in the reference (all missing or infinite)"} in \
        summary["drift"]["not_compared"]
    assert summary["drift"]["compared_columns"] == len(FEATURES) - 1
    assert (monitoring_dir(ws) / "evidently").is_dir()


def test_a_quality_drop_on_too_few_labelled_predictions_raises_no_alert():
    from monitoring.runner import _reasons

    row = {"quality_metric": "roc_auc", "quality": 0.5, "quality_baseline": 0.8}
    assert _reasons(JobSpec(), {**row, "n_labelled": checks.MIN_ROWS_TO_JUDGE - 1}, {}, [], 0.5) == []
    assert _reasons(JobSpec(), {**row, "n_labelled": checks.MIN_ROWS_TO_JUDGE}, {}, [], 0.5) == [
        "roc_auc 0.5 is 0.3 worse than the holdout's 0.8"]
    assert _reasons(JobSpec(), {**row, "dataset_drift": 1, "drift_share": 1.0, "drifted_columns": ["a"]},
                    {}, [], 0.5, judged=False) == []


def test_the_cli_names_skipped_files_and_infinities(shop):
    ws, _ = shop
    at = datetime.now(timezone.utc) - timedelta(minutes=5)
    rows = frame(13, 200)
    rows.loc[:3, "customers__n2"] = np.inf
    log_predictions(ws, rows, at)
    bad = log_predictions(ws, frame(14, 50), at - timedelta(minutes=1))
    corrupt(bad, "not parquet")
    out = gristmill("monitor", "run", "shop")
    assert out.returncode == 0, out.stderr
    assert f"skipped unreadable file: {bad}" in out.stdout
    assert "4 infinite values counted as out of range" in out.stdout
    assert "Traceback" not in out.stderr
