"""A monitoring run on a small real workspace: training set, prediction log, label table (no mocks).

No model is registered here (the end-to-end test covers one), so prediction drift is absent and
quality comes from the label join alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from gristmill.errors import GristmillError
from gristmill.spec import parse_spec
from monitoring import history, scheduler
from monitoring.jobs import JobSpec, ScheduleSpec
from monitoring.runner import JobBusy, _lock, monitoring_dir, run_job
from monitoring.window import join_labels

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
SPEC = {"project": "shop", "sources": [{"path": "x.csv"}], "entity": {"name": "customer", "key": "id"},
        "features": [{"table": "customers"}], "label": {"table": "labels", "target": "churned", "timestamp": "as_of"}}


def features(seed: int, n: int, drifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customers__age": rng.normal(50 if drifted else 40, 10, n),
        "customers__plan": rng.choice(["basic", "plus", "pro"], n, p=[0.1, 0.2, 0.7] if drifted else [0.6, 0.3, 0.1]),
        "customers__spend": rng.gamma(2.0, 30.0, n),
    })


@pytest.fixture
def shop(workspace, add_tables, tmp_path, monkeypatch):
    monkeypatch.setenv("GRISTMILL_MONITORING_JOBS", str(tmp_path / "jobs"))
    ws = workspace
    ws.spec_path("shop").parent.mkdir(parents=True)
    ws.spec_path("shop").write_text(yaml.safe_dump(SPEC))
    train = features(1, 3000)
    train.insert(0, "id", [f"c{i}" for i in range(3000)])
    train["churned"] = np.random.default_rng(2).random(3000) < 0.3
    ws.datasets("shop").mkdir(parents=True)
    train.to_parquet(ws.datasets("shop") / "shop-abc-20261101T000000.parquet")
    (ws.datasets("shop") / "shop-abc-20261101T000000.json").write_text(json.dumps(
        {"key": "id", "target": "churned", "features": [c for c in train.columns if c.startswith("customers__")]}))
    labels = pd.DataFrame({"id": [f"c{i}" for i in range(200)],
                           "as_of": [NOW - timedelta(minutes=30)] * 200,
                           "churned": [i % 2 == 0 for i in range(200)]})
    add_tables(ws, "shop", {"labels": labels})
    return ws, parse_spec(SPEC, "shop.yaml")


def log_predictions(ws, frame: pd.DataFrame, at: datetime, ids=None):
    """Prediction-log rows as the service writes them (one Parquet file in a date folder)."""
    folder = ws.root / "predictions" / "shop" / f"date={at:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(frame)
    table = pa.Table.from_pandas(frame.assign(
        _ts=[at] * n, _endpoint="predict_entity", _entity_id=ids if ids is not None else [None] * n,
        _model_version="1", _latency_ms=1.0, _prediction=["True", "False"] * (n // 2),
        _probabilities=[json.dumps({"False": 0.3, "True": 0.7}), json.dumps({"False": 0.8, "True": 0.2})] * (n // 2)),
        preserve_index=False)
    pq.write_table(table, folder / f"{at:%H%M%S}-{n}.parquet")


def test_a_run_of_drifted_traffic_writes_reports_history_and_alerts(shop):
    ws, spec = shop
    log_predictions(ws, features(3, 400, drifted=True), NOW - timedelta(hours=2), ids=[f"c{i}" for i in range(400)])
    log_predictions(ws, features(4, 400), NOW - timedelta(hours=30))  # outside the 24-hour window
    job = JobSpec(name="hourly", alerts=[{"type": "file", "path": "a.jsonl"}], thresholds={"drift_share": 0.5})

    summary = run_job(ws, spec, job, now=NOW)

    assert summary["status"] == "alert" and summary["model_version"] is None
    assert summary["window"]["rows"] == 400
    assert summary["drift"]["drifted_columns"] == ["customers__age", "customers__plan"]
    assert summary["reference_cached"] is False
    row = history.read(ws.root, "shop")[-1]
    assert row["drift_share"] == pytest.approx(2 / 3) and row["dataset_drift"] == 1
    assert row["n_labelled"] == 200  # labels observed after their predictions, by entity
    assert row["quality_metric"] == "accuracy" and row["quality"] == 1.0  # even ids churned, predicted True
    for key in ("html_path", "json_path", "summary_path"):
        assert (ws.root / row[key]).is_file()
    assert any("drift share 0.67 >= 0.50" in r for r in row["alerts"]["reasons"])
    assert (ws.root / "monitoring" / "alerts" / "a.jsonl").is_file()
    from evidently.ui.workspace import Workspace as EvidentlyWorkspace  # what `evidently ui` reads

    evidently = EvidentlyWorkspace(str(monitoring_dir(ws) / "evidently"))
    (project,) = evidently.search_project("shop")
    assert len(evidently.list_runs(project.id)) == 1

    again = run_job(ws, spec, job, now=NOW + timedelta(minutes=1))
    assert again["reference_cached"] is True  # reference statistics once per model version
    assert len(history.read(ws.root, "shop", "hourly")) == 2


def test_an_undrifted_window_is_ok_and_an_empty_one_is_skipped(shop):
    ws, spec = shop
    assert run_job(ws, spec, JobSpec(), now=NOW)["status"] == "skipped"
    log_predictions(ws, features(5, 600), NOW - timedelta(hours=1))
    summary = run_job(ws, spec, JobSpec(), now=NOW)
    assert summary["status"] == "ok" and summary["drift"]["drifted_columns"] == []
    assert [r["status"] for r in history.read(ws.root, "shop")] == ["skipped", "ok"]


def test_one_job_never_runs_twice_at_the_same_time(shop):
    ws, spec = shop
    with _lock(monitoring_dir(ws) / "locks" / "shop.default.lock", "busy"):
        with pytest.raises(JobBusy, match="already running"):
            run_job(ws, spec, JobSpec(), now=NOW)


def test_join_takes_the_first_label_after_each_prediction_within_the_horizon():
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    window = pd.DataFrame({"_entity_id": ["a", "a", "b", None], "_ts": [t0, t0 + pd.Timedelta(days=5), t0, t0],
                           "_prediction": ["1", "0", "1", "1"], "_probabilities": None})
    labels = pd.DataFrame({"key": ["a", "a", "b"], "target": [1, 0, 1],
                           "label_ts": [t0 + pd.Timedelta(days=1), t0 + pd.Timedelta(days=6),
                                        t0 + pd.Timedelta(days=40)]})
    joined = join_labels(window, labels, horizon_days=30)
    assert sorted(zip(joined["prediction"], joined["target"])) == [("0", 0), ("1", 1)]  # b's is too late


def test_scheduler_catches_up_a_missed_run_once(shop):
    ws, _ = shop
    job = JobSpec(name="default", schedule=ScheduleSpec(every_seconds=3600, misfire_grace_seconds=600))
    scheduler.schedule(ws.root, "shop", job, ws.root / "nojobs",
                       next_run_time=datetime.now(timezone.utc) - timedelta(seconds=90))  # missed 3 ago
    late = JobSpec(name="late", schedule=ScheduleSpec(every_seconds=3600, misfire_grace_seconds=10))
    scheduler.schedule(ws.root, "shop", late, ws.root / "nojobs",
                       next_run_time=datetime.now(timezone.utc) - timedelta(seconds=120))  # beyond its grace
    assert {j["id"] for j in scheduler.list_scheduled(ws.root)} == {"shop:default", "shop:late"}

    stop = threading.Event()
    thread = threading.Thread(target=scheduler.serve, args=(ws.root, 0.5, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not history.read(ws.root, "shop"):
            time.sleep(0.5)
        time.sleep(2)
        with pytest.raises(scheduler.SchedulerBusy, match="already runs"):
            scheduler.serve(ws.root, 0.5, threading.Event())
    finally:
        stop.set()
        thread.join(60)
    runs = history.read(ws.root, "shop")
    assert [(r["job"], r["status"]) for r in runs] == [("default", "skipped")]  # once; 'late' not at all
    nxt = {j["id"]: j["next_run"] for j in scheduler.list_scheduled(ws.root)}
    assert datetime.fromisoformat(nxt["shop:default"]) > datetime.now(timezone.utc) + timedelta(minutes=50)
    assert scheduler.unschedule(ws.root, "shop", "late") and not scheduler.unschedule(ws.root, "shop", "late")


def gristmill(*args):
    """The real entry point (environment from the fixtures): exit codes and one-line errors."""
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True)


def test_cli_schedule_list_history_and_mistakes(shop, tmp_path):
    ws, _ = shop
    out = gristmill("monitor", "schedule", "shop", "--job", "hourly", "--cron", "0 * * * *", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["id"] == "shop:hourly"
    assert yaml.safe_load((tmp_path / "jobs" / "shop" / "hourly.yaml").read_text())["schedule"]["cron"] == "0 * * * *"
    listed = gristmill("monitor", "list", "shop", "--json")
    assert json.loads(listed.stdout)["jobs"][0]["scheduled"] is True
    empty = gristmill("monitor", "history", "shop")
    assert "no monitoring runs" in empty.stdout

    for args, message in [
        (["monitor", "schedule", "shop", "--cron", "61 * * * *"], "invalid cron line"),
        (["monitor", "schedule", "shop"], "give exactly one of --cron"),
        (["monitor", "run", "shop", "--job", "nope"], "has no monitoring job 'nope' (jobs: hourly)"),
        (["monitor", "unschedule", "shop", "--job", "nope"], "is not scheduled"),
        (["monitor", "history", "nope"], "project 'nope' is not in this workspace"),
    ]:
        result = gristmill(*args)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_failed_run_is_recorded_and_still_raises(shop, tmp_path):
    ws, spec = shop
    job = JobSpec(name="batch", current={"source": "file", "path": str(tmp_path / "missing.parquet")})
    with pytest.raises(GristmillError, match="no such file"):
        run_job(ws, spec, job, now=NOW)
    (row,) = history.read(ws.root, "shop", "batch")
    assert row["status"] == "error" and "no such file" in row["message"]


def test_every_threshold_names_its_reason():
    from monitoring.runner import _reasons

    row = {"dataset_drift": 1, "drift_share": 0.6, "drifted_columns": ["a", "b"], "prediction_drift": 1,
           "target_drift": 0, "quality_metric": "roc_auc", "quality": 0.70, "quality_baseline": 0.80}
    summary = {"prediction_drift": {"method": "Jensen-Shannon distance", "score": 0.2}}
    quality = [{"column": "a", "missing_share": 0.3, "reference_missing_share": 0.0, "missing_increase": 0.3,
                "new_category_share": 0.2, "new_categories": ["x"], "out_of_range_share": None},
               {"column": "b", "missing_share": 0.0, "reference_missing_share": 0.0, "missing_increase": 0.0,
                "new_category_share": None, "new_categories": [], "out_of_range_share": 0.01}]
    reasons = _reasons(JobSpec(), row, summary, quality, 0.5)
    assert reasons == ["drift share 0.60 >= 0.50 (a, b)", "prediction drift (Jensen-Shannon distance 0.2)",
                       "a: missing share 0.30 (reference 0.00)", "a: 20.0% new categories (x)",
                       "roc_auc 0.7 is 0.1 worse than the holdout's 0.8"]
    calm = JobSpec(thresholds={"prediction_drift": False, "missing_share_increase": 0.5,
                               "new_category_share": 0.5, "quality_drop": 0.2})
    assert _reasons(calm, {**row, "dataset_drift": 0}, summary, quality, 0.7) == []
    # lower is better for errors
    assert _reasons(calm, {"quality_metric": "rmse", "quality": 3.0, "quality_baseline": 2.5}, {}, [], 0.5) == [
        "rmse 3 is 0.5 worse than the holdout's 2.5"]


def test_the_evidently_engine_decides_on_the_full_frames_with_the_same_verdicts(shop):
    ws, spec = shop
    log_predictions(ws, features(9, 2000, drifted=True), NOW - timedelta(hours=1))
    fast = run_job(ws, spec, JobSpec(name="fast"), now=NOW)
    full = run_job(ws, spec, JobSpec(name="full", engine="evidently"), now=NOW)
    assert full["drift"]["engine"] == "evidently"
    assert full["drift"]["drifted_columns"] == fast["drift"]["drifted_columns"] == ["customers__age",
                                                                                     "customers__plan"]
    assert [c["method"] for c in full["drift"]["columns"]] == [c["method"] for c in fast["drift"]["columns"]]
