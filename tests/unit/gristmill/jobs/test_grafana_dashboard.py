"""docs/grafana/gristmill.json: every query names a metric that the server or a worker exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[4] / "docs" / "grafana" / "gristmill.json"
PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
                "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "offset", "topk", "bottomk", "clamp_min", "clamp_max", "abs", "delta", "deriv"}
PROMETHEUS_OWN = {"up"}   # Prometheus' own series about its targets


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, groupings, ranges taken out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)             # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                       # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                      # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {w for w in words if w not in PROMQL_WORDS}


def exported() -> set[str]:
    from gristmill.jobs.metrics import JOB_COLLECTORS, QueueCollector, exported_names
    from gristmill.server.observe import HTTP_COLLECTORS

    return exported_names([*JOB_COLLECTORS, *HTTP_COLLECTORS, QueueCollector(ws=None)])


def test_every_query_names_an_exported_metric():
    board = json.loads(DASHBOARD.read_text())
    names = exported()
    assert {"gristmill_jobs", "gristmill_jobs_started_total", "gristmill_http_requests_total",
            "gristmill_job_queue_wait_seconds_bucket"} <= names
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    read = set()
    for expr in exprs:
        unknown = metric_names(expr) - names - PROMETHEUS_OWN
        assert not unknown, f"{expr!r} reads {unknown}, which nothing exports"
        read |= metric_names(expr)
    # and the dashboard shows the queue, the attempts, the waits and the API
    assert {"gristmill_jobs", "gristmill_jobs_retried_total", "gristmill_job_queue_wait_seconds_bucket",
            "gristmill_job_duration_seconds_bucket", "gristmill_http_requests_total",
            "gristmill_http_request_duration_seconds_bucket", "gristmill_workers"} <= read


def test_the_parser_finds_names_and_skips_labels():
    assert metric_names('histogram_quantile(0.99, sum by (le, kind) (rate(x_bucket{kind="a b"}[5m])))') == {"x_bucket"}
    assert metric_names("a_total / ignoring(x) b_count") == {"a_total", "b_count"}
    assert metric_names("nope_metric") - exported() == {"nope_metric"}


def test_panels_are_laid_out_and_unique():
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and board["uid"] and board["title"]
    assert all({"x", "y", "w", "h"} <= set(p["gridPos"]) for p in board["panels"])
