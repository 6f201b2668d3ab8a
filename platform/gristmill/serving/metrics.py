"""Prometheus metrics of a project's service, beside BentoML's own on ``/metrics``.

``gristmill_predictions_total`` counts predictions and ``gristmill_prediction_seconds`` times
requests, both labelled by project, model version and endpoint, so a rollback shows up as traffic
moving from one version to another. BentoML runs the Prometheus client in multiprocess mode, so
every worker's counts add up.
"""

from __future__ import annotations

from functools import lru_cache

LABELS = ["project", "model_version", "endpoint"]


@lru_cache(maxsize=1)
def _metrics():
    from prometheus_client import Counter, Histogram

    return (Counter("gristmill_predictions", "Predictions served.", LABELS),
            Histogram("gristmill_prediction_seconds", "Time to answer a prediction request.", LABELS,
                      buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)))


def observe(project: str, version: str, endpoint: str, predictions: int, seconds: float) -> None:
    counter, histogram = _metrics()
    counter.labels(project, version, endpoint).inc(predictions)
    histogram.labels(project, version, endpoint).observe(seconds)


def summarize(text: str, project: str) -> list[dict]:
    """Per model version and endpoint of ``project``, from a ``/metrics`` page: ``requests``,
    ``predictions`` and the p50/p99 request seconds estimated from the histogram's buckets (linear
    within a bucket, as Prometheus' ``histogram_quantile`` does)."""
    from prometheus_client.parser import text_string_to_metric_families

    rows: dict[tuple, dict] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("project") != project:
                continue
            key = (sample.labels.get("model_version"), sample.labels.get("endpoint"))
            row = rows.setdefault(key, {"model_version": key[0], "endpoint": key[1], "requests": 0,
                                        "predictions": 0, "buckets": {}})
            if sample.name == "gristmill_predictions_total":
                row["predictions"] += int(sample.value)
            elif sample.name == "gristmill_prediction_seconds_count":
                row["requests"] += int(sample.value)
            elif sample.name == "gristmill_prediction_seconds_bucket":
                edge = float(sample.labels["le"])
                row["buckets"][edge] = row["buckets"].get(edge, 0) + sample.value
    out = []
    for row in rows.values():
        buckets = sorted(row.pop("buckets").items())
        row["p50_seconds"] = _quantile(0.5, buckets)
        row["p99_seconds"] = _quantile(0.99, buckets)
        out.append(row)
    return sorted(out, key=lambda r: (str(r["model_version"]), str(r["endpoint"])))


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``histogram_quantile`` over cumulative ``(upper edge, count)`` pairs (None: no observations)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for edge, count in buckets:
        if count >= rank:
            if edge == float("inf"):
                return lower   # in the open top bucket: its lower edge, as Prometheus answers
            return lower + (edge - lower) * ((rank - below) / (count - below) if count > below else 0.0)
        lower, below = edge, count
    return lower
