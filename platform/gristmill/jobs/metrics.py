"""Prometheus metrics of the jobs: counters in each worker, queue figures read from the database.

Names: ``gristmill_jobs`` (gauge by kind and state, from the metadata database, so every scrape of
any server or worker sees the whole queue), ``gristmill_jobs_started_total``,
``gristmill_jobs_finished_total`` (by kind and end state), ``gristmill_jobs_retried_total``,
``gristmill_job_duration_seconds`` and ``gristmill_job_queue_wait_seconds`` (histograms by kind),
``gristmill_workers`` (live workers) and ``gristmill_worker_slots`` (their slots). No label holds a
project or user name: the metrics are safe to show to whoever may scrape them.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
STARTED = Counter("gristmill_jobs_started", "Job attempts started on this worker.", ["kind"])
FINISHED = Counter("gristmill_jobs_finished", "Job attempts ended on this worker.", ["kind", "state"])
RETRIED = Counter("gristmill_jobs_retried", "Job attempts queued again (lost worker, transient error).",
                  ["kind"])
DURATION = Histogram("gristmill_job_duration_seconds", "Run time of job attempts.", ["kind"], buckets=BUCKETS)
WAIT = Histogram("gristmill_job_queue_wait_seconds", "Time from submit to start.", ["kind"], buckets=BUCKETS)


def started(job) -> None:
    STARTED.labels(job.kind).inc()
    if job.started_at:
        WAIT.labels(job.kind).observe(max(0.0, job.started_at - job.created_at))


def finished(job) -> None:
    state = "retried" if job.state == "queued" else job.state
    FINISHED.labels(job.kind, state).inc()
    if state == "retried":
        RETRIED.labels(job.kind).inc()
    if job.started_at:
        DURATION.labels(job.kind).observe(max(0.0, (job.finished_at or job.started_at) - job.started_at))


class QueueCollector:
    """Jobs by kind and state and the live workers, read from the metadata database at each scrape."""

    def __init__(self, ws) -> None:
        self.ws = ws

    def collect(self):
        from gristmill.config import load_config, metadata
        from gristmill.jobs import store

        md = metadata(self.ws)
        jobs = GaugeMetricFamily("gristmill_jobs", "Jobs by kind and state.", labels=["kind", "state"])
        for (kind, state), n in sorted(store.counts(md).items()):
            jobs.add_metric([kind, state], n)
        yield jobs
        live = [w for w in store.list_workers(md, load_config(self.ws).jobs.lost_after_seconds)
                if w["status"] == "live"]
        yield GaugeMetricFamily("gristmill_workers", "Live workers.", value=len(live))
        slots = GaugeMetricFamily("gristmill_worker_slots", "Slots of the live workers.", labels=["use"])
        slots.add_metric(["total"], sum(w["slots"] for w in live))
        slots.add_metric(["busy"], sum(w["slots_busy"] for w in live))
        yield slots


_registered: set[str] = set()


def register_queue(ws, registry: CollectorRegistry = REGISTRY) -> None:
    """Add the queue's figures to ``registry`` (once per workspace and process)."""
    key = f"{id(registry)}:{ws.root}"
    if key not in _registered:
        registry.register(QueueCollector(ws))
        _registered.add(key)
