"""Job definitions, the alert channel registry and its channels (a real local HTTP receiver)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml

from gristmill.errors import GristmillError, SpecError
from gristmill.spec import parse_spec
from monitoring import alerts
from monitoring.jobs import JobSpec, load_jobs, write_job

SPEC = {"project": "shop", "sources": [{"path": "x.csv"}], "entity": {"name": "customer", "key": "id"},
        "features": [{"table": "customers"}], "label": {"table": "labels", "target": "y", "timestamp": "ts"}}


def spec(**monitoring):
    return parse_spec({**SPEC, "monitoring": monitoring} if monitoring else SPEC, "shop.yaml")


def test_every_job_field_is_described():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description or name in ("reference", "current", "labels", "thresholds"), name
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann)

    walk(JobSpec)


def test_a_project_without_jobs_has_the_default_one(tmp_path):
    jobs = load_jobs(spec(), tmp_path)
    assert list(jobs) == ["default"] and jobs["default"][0] == JobSpec()


def test_jobs_come_from_files_and_the_spec(tmp_path):
    write_job("shop", JobSpec(name="hourly", thresholds={"drift_share": 0.2}), tmp_path)
    jobs = load_jobs(spec(jobs=[{"name": "weekly", "current": {"hours": 168}}]), tmp_path)
    assert sorted(jobs) == ["hourly", "weekly"]
    assert jobs["hourly"][0].thresholds.drift_share == 0.2
    assert jobs["weekly"][0].current.hours == 168
    # the file holds only what differs from the defaults, readable
    assert yaml.safe_load((tmp_path / "shop" / "hourly.yaml").read_text()) == {
        "name": "hourly", "thresholds": {"drift_share": 0.2}}


@pytest.mark.parametrize("data,message", [
    ({"name": "x", "treshold": 1}, "x.yaml: treshold: unknown key"),
    ({"name": "x", "thresholds": {"drift_share": 2}}, "x.yaml: thresholds.drift_share: Input should be less"),
    ({"name": "x", "current": {"source": "file"}}, "source 'file' needs `path`"),
    ({"name": "x", "schedule": {"cron": "every hour"}}, "invalid cron line 'every hour'"),
    ({"name": "x", "schedule": {}}, "give exactly one of `cron` and `every_seconds`"),
    ({"name": "x", "alerts": [{"type": "pager"}]}, "unknown alert channel 'pager' (valid: file, log, retrain, webhook)"),
    ({"name": "x", "alerts": [{"type": "webhook", "url": "ftp://x"}]}, "alerts[0].url"),
    ({"name": "x", "alerts": [{"type": "webhook", "url": "http://x", "retry": 1}]}, "alerts[0].retry: unknown key"),
    ({"name": "y"}, "'y' differs from the file name 'x'"),
])
def test_job_file_mistakes_name_the_file_and_key(tmp_path, data, message):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "x.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as err:
        load_jobs(spec(), tmp_path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_job_defined_twice_names_both_places(tmp_path):
    write_job("shop", JobSpec(name="hourly"), tmp_path)
    with pytest.raises(SpecError, match="also defined in"):
        load_jobs(spec(jobs=[{"name": "hourly"}]), tmp_path)


def test_job_names_cannot_leave_the_jobs_folder(tmp_path):
    with pytest.raises(ValueError, match="not a valid job name"):
        write_job("shop", JobSpec(name="../../etc"), tmp_path)


def test_registry_rejects_duplicates_and_lists_valid_keys():
    with pytest.raises(GristmillError, match="already registered"):
        @alerts.register_channel
        class Again(alerts.AlertChannel):
            key = "webhook"
    with pytest.raises(ValueError, match=r"valid: file, log, retrain, webhook"):
        alerts.parse_channel({"type": "sms"})


class Flaky(BaseHTTPRequestHandler):
    """Fails the first ``fail`` POSTs with 503, then accepts."""

    fail = 0
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Flaky.fail > 0:
            Flaky.fail -= 1
            self.send_response(503)
        else:
            Flaky.received.append(json.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = HTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Flaky.received, Flaky.fail = [], 0
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


ALERT = alerts.Alert(project="shop", job="hourly", run_id="r1", model_version="3", reasons=["drift share 0.60 >= 0.50"],
                     drift_share=0.6, drifted_columns=["age"], report=None, at="2026-11-23T00:00:00+00:00")


def test_webhook_is_retried_until_it_is_delivered(receiver, tmp_path):
    Flaky.fail = 2
    out = alerts.dispatch(ALERT, [{"type": "webhook", "url": receiver, "retries": 3, "backoff_seconds": 0.01}],
                          {"workspace": str(tmp_path), "project": "shop"})
    assert out == [{"type": "log", "ok": True}, {"type": "webhook", "ok": True}]
    assert [r["run_id"] for r in Flaky.received] == ["r1"]


def test_a_failing_channel_is_reported_and_the_others_still_run(receiver, tmp_path, caplog):
    Flaky.fail = 10
    channels = [{"type": "webhook", "url": receiver, "retries": 1, "backoff_seconds": 0.01},
                {"type": "file", "path": "alerts.jsonl"}]
    with caplog.at_level("WARNING", logger="gristmill.monitoring.alerts"):
        out = alerts.dispatch(ALERT, channels, {"workspace": str(tmp_path), "project": "shop"})
    assert out[1]["ok"] is False and "after 2 attempt(s): HTTP 503" in out[1]["error"]
    assert out[2] == {"type": "file", "ok": True}
    assert "ALERT shop/hourly (model v3, run r1): drift share 0.60 >= 0.50" in caplog.text  # the log line
    line = (tmp_path / "monitoring" / "alerts" / "alerts.jsonl").read_text().splitlines()
    assert json.loads(line[0])["reasons"] == ["drift share 0.60 >= 0.50"]


def test_file_channel_stays_inside_the_alerts_folder(tmp_path):
    with pytest.raises(GristmillError, match="leaves"):
        alerts.resolve_alert_file(tmp_path, "../../etc/cron.d/x")
    assert alerts.resolve_alert_file(tmp_path, "/var/tmp/a.jsonl").as_posix() == "/var/tmp/a.jsonl"


EXAMPLES = {"log": {}, "file": {"path": "contract.jsonl"}, "webhook": {"url": None, "retries": 0},
            "retrain": {"budget_seconds": 5}}


@pytest.mark.parametrize("key", alerts.channel_types())
def test_every_channel_honours_the_contract(key, receiver, tmp_path):
    """Each registered channel: a described, strict Config, an example, and a delivered toy alert."""
    cls = alerts._CHANNELS[key]
    assert cls.key == key and cls.__doc__
    assert cls.Config.model_config.get("extra") == "forbid"
    assert all(f.description for f in cls.Config.model_fields.values())
    assert key in EXAMPLES, f"add an example configuration of channel {key!r} to EXAMPLES"
    options = {k: (receiver if v is None else v) for k, v in EXAMPLES[key].items()}
    with pytest.raises(ValueError, match="unknown key"):
        alerts.parse_channel({"type": key, **options, "no_such_option": 1})
    channel = alerts.make_channel({"type": key, **options}, {"workspace": str(tmp_path), "project": "shop"})
    channel.send(ALERT)  # raises when it cannot deliver
