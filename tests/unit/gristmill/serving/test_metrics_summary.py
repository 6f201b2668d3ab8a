"""serving.metrics.summarize: a real prometheus_client /metrics page read back per model version."""

from __future__ import annotations


def _page(observations: dict[str, list[float]]) -> str:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    registry = CollectorRegistry()
    labels = ["project", "model_version", "endpoint"]
    counter = Counter("gristmill_predictions", "x", labels, registry=registry)
    histogram = Histogram("gristmill_prediction_seconds", "x", labels, registry=registry,
                          buckets=(0.001, 0.01, 0.1, 1.0))
    for version, seconds in observations.items():
        for s in seconds:
            histogram.labels("shop", version, "predict").observe(s)
            counter.labels("shop", version, "predict").inc(3)
    histogram.labels("other", "9", "predict").observe(0.5)   # another project's series: left out
    return generate_latest(registry).decode()


def test_requests_predictions_and_quantiles_per_version():
    from gristmill.serving.metrics import summarize

    rows = summarize(_page({"1": [0.005] * 90 + [0.05] * 10, "2": [0.0005] * 4}), "shop")
    assert [(r["model_version"], r["requests"], r["predictions"]) for r in rows] == [("1", 100, 300), ("2", 4, 12)]
    one, two = rows
    assert 0.001 < one["p50_seconds"] <= 0.01 and 0.01 < one["p99_seconds"] <= 0.1
    assert two["p50_seconds"] <= 0.001


def test_no_observations_give_no_quantile():
    from gristmill.serving.metrics import _quantile, summarize

    assert summarize("", "shop") == []
    assert _quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert _quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == 0.1   # open top bucket: its lower edge
