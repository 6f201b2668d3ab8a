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
