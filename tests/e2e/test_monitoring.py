"""Scheduled monitoring end to end: the real scheduler, a real service, a real webhook receiver.

The demo trains and deploys churn_demo; a job scheduled every few seconds watches the prediction
log; drifted traffic sent through `bentoml serve` reaches the log; the scheduler's run writes the
Evidently HTML report and a history row, and POSTs an alert to a local HTTP server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _port() -> int:
    """A free port in 3300-3399 (the range kept for this project's test servers)."""
    for port in range(3300, 3400):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 3300-3399")


def _run(args, env, timeout=900):
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args} failed:\n{out.stderr[-3000:]}"
    return out


class Receiver(BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.calls.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook():
    server = HTTPServer(("127.0.0.1", _port()), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", Receiver.calls
    server.shutdown()


def _start(args, cwd, env, log: Path):
    handle = open(log, "w")
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True), handle


def _stop(proc, handle):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    handle.close()


def _drifted_rows(root: Path, n: int) -> list[dict]:
    import pandas as pd

    path = sorted((root / "ws" / "datasets" / "churn_demo").glob("*.parquet"))[-1]
    meta = json.loads(path.with_suffix(".json").read_text())
    frame = pd.read_parquet(path)[meta["features"]].sample(n, random_state=7, replace=True)
    frame = frame.reset_index(drop=True)
    for col in frame.columns:
        if frame[col].dtype.kind == "f" or frame[col].dtype.kind == "i":
            frame[col] = frame[col].astype("float64") * 3 + 5  # far outside the training ranges
        elif frame[col].dtype == object:
            frame[col] = frame[col].dropna().iloc[0] if frame[col].notna().any() else None
    return json.loads(frame.to_json(orient="records"))


def test_scheduled_job_reports_drift_of_served_traffic_and_calls_the_webhook(tmp_path_factory, webhook,
                                                                              start_server):
    url, calls = webhook
    root = tmp_path_factory.mktemp("monitoring")
    env = {**os.environ, "GRISTMILL_WORKSPACE": str(root / "ws"),
           "GRISTMILL_FEATURE_REPO": str(root / "feature_repo"), "GRISTMILL_BENTOS": str(root / "bentos"),
           "GRISTMILL_MONITORING_JOBS": str(root / "jobs")}
    summary = json.loads(_run([str(BIN / "gristmill"), "demo", "--budget", "10", "--json"], env).stdout)
    # the demo's drift report: the data's own latest period (not the clock) against the training set,
    # and the run is in the Evidently workspace the README names before any prediction was logged
    import pandas as pd

    training = sorted((root / "ws" / "datasets" / "churn_demo").glob("*.parquet"))[-1]
    stamps = pd.to_datetime(pd.read_parquet(training, columns=["event_timestamp"])["event_timestamp"], utc=True)
    latest = stamps.max()
    demo_drift = summary["drift"]
    assert pd.Timestamp(demo_drift["as_of"]) == latest
    assert demo_drift["n_current"] == int((stamps > latest - pd.Timedelta(days=30)).sum())
    assert demo_drift["dataset_drift"] is False and demo_drift["not_compared"] == []
    print(f"demo drift as of {latest}: {len(demo_drift['drifted_columns'])}/{len(demo_drift['columns'])} "
          f"drifted (share {demo_drift['drift_share']:.2f}), not compared {len(demo_drift['not_compared'])}: "
          f"{demo_drift['drifted_columns']}")
    from evidently.ui.workspace import Workspace as EvidentlyWorkspace

    evidently = EvidentlyWorkspace(str(root / "ws" / "monitoring" / "evidently"))
    (project,) = evidently.search_project("churn_demo")
    assert len(evidently.list_runs(project.id)) == 1
    made = json.loads(_run([str(BIN / "gristmill"), "tokens", "create", "--project", "churn_demo", "--role",
                            "viewer", "--label", "e2e traffic", "--json"], env).stdout)
    viewer = {"Authorization": f"Bearer {made['token']}"}

    job = {"name": "traffic", "current": {"source": "prediction_log", "hours": 1, "min_rows": 100},
           "thresholds": {"drift_share": 0.3},
           "alerts": [{"type": "webhook", "url": url, "retries": 2},
                      {"type": "file", "path": "traffic.jsonl"}]}
    (root / "jobs" / "churn_demo").mkdir(parents=True)
    (root / "jobs" / "churn_demo" / "traffic.yaml").write_text(yaml.safe_dump(job))
    scheduled = json.loads(_run([str(BIN / "gristmill"), "monitor", "schedule", "churn_demo", "--job", "traffic",
                                 "--every", "4", "--json"], env).stdout)
    assert scheduled["id"] == "churn_demo:traffic"
    assert "every_seconds: 4" in (root / "jobs" / "churn_demo" / "traffic.yaml").read_text()

    scheduler, scheduler_log = _start([str(BIN / "gristmill"), "scheduler", "--poll", "1"], root, env,
                                      root / "scheduler.log")
    try:
        with start_server([str(BIN / "bentoml"), "serve", "service:ChurnDemo"], Path(summary["bento"]), env,
                          root / "serve.log", ready_seconds=150) as base:
            rows = _drifted_rows(root, 240)
            for start in range(0, len(rows), 60):
                reply = httpx.post(f"{base}/predict", json={"rows": rows[start:start + 60]}, headers=viewer,
                                   timeout=60)
                assert reply.status_code == 200, reply.text

            deadline, alerted = time.monotonic() + 150, None
            while time.monotonic() < deadline and alerted is None:
                out = _run([str(BIN / "gristmill"), "monitor", "history", "churn_demo", "--job", "traffic",
                            "--json"], env)
                runs = json.loads(out.stdout)["runs"]
                alerted = next((r for r in runs if r["status"] == "alert" and r["n_current"] >= 100), None)
                if alerted is None:
                    assert scheduler.poll() is None, (root / "scheduler.log").read_text()[-3000:]
                    time.sleep(3)
            assert alerted is not None, (root / "scheduler.log").read_text()[-3000:]
    finally:
        _stop(scheduler, scheduler_log)

    assert alerted["drift_share"] >= 0.3 and alerted["dataset_drift"] == 1
    assert alerted["model_version"] == "1" and alerted["n_current"] >= 100
    assert Path(alerted["html_path"]).is_file() and Path(alerted["html_path"]).stat().st_size > 10_000
    assert "<html" in Path(alerted["html_path"]).read_text()[:2000].lower()
    assert json.loads(Path(alerted["summary_path"]).read_text())["drift"]["dataset_drift"] is True
    assert [c["ok"] for c in alerted["alerts"]["channels"]] == [True, True, True]  # log, webhook, file
    received = [c for c in calls if c["run_id"] == alerted["run_id"]]
    assert len(received) == 1
    assert received[0]["project"] == "churn_demo" and received[0]["job"] == "traffic"
    assert any("drift share" in r for r in received[0]["reasons"])
    assert (root / "ws" / "monitoring" / "alerts" / "traffic.jsonl").is_file()
    # the Evidently workspace holds the project and its runs (what `evidently ui` shows)
    assert list((root / "ws" / "monitoring" / "evidently").glob("*/snapshots/*.json"))
    assert "scheduler started" in (root / "scheduler.log").read_text()
    # the prediction check ran; whether the model's answers drift depends on the model the demo's
    # search found (trees saturate outside the training ranges), so only its verdict's form is fixed
    assert alerted["prediction_drift"] in (0, 1)
    # metrics on the model version's MLflow run
    code = ("import mlflow; from mlflow import MlflowClient; "
            f"uri = 'sqlite:///{root / 'ws' / 'mlflow' / 'mlflow.db'}'; c = MlflowClient(uri, uri); "
            "run = c.get_run(c.get_model_version('churn_demo', '1').run_id); "
            "print(run.data.metrics.get('monitor.traffic.drift_share'), run.data.metrics.get('monitor.traffic.alert'))")
    assert _run([sys.executable, "-c", code], env).stdout.split()[-2:] == ["1.0", "1.0"]
