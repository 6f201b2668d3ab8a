"""Prometheus metrics of the jobs: counters in each worker, queue figures read from the database.

Names: ``gristmill_jobs`` (gauge by kind and state, from the metadata database, so every scrape of
any server or worker sees the whole queue), ``gristmill_jobs_started_total``,
``gristmill_jobs_finished_total`` (by kind and end state), ``gristmill_jobs_retried_total``,
``gristmill_job_duration_seconds`` and ``gristmill_job_queue_wait_seconds`` (histograms by kind,
observed by the worker that ran the attempt), and from the database ``gristmill_jobs_retried_jobs``,
``gristmill_job_oldest_waiting_seconds``, ``gristmill_workers`` (live workers) and
``gristmill_worker_slots`` (their slots). No label holds a project or user name: the metrics are
safe to show to whoever may scrape them. The server's HTTP figures: :mod:`gristmill.server.observe`.
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
    """The whole queue, read from the metadata database at each scrape: jobs by kind and state,
    jobs retried, the oldest wait, the live workers and their slots."""

    def __init__(self, ws) -> None:
        self.ws = ws

    def describe(self):
        return list(self._families())

    def _families(self):
        jobs = GaugeMetricFamily("gristmill_jobs", "Jobs by kind and state.", labels=["kind", "state"])
        retried = GaugeMetricFamily("gristmill_jobs_retried_jobs", "Jobs (any state) that needed more "
                                    "than one attempt, by kind.", labels=["kind"])
        oldest = GaugeMetricFamily("gristmill_job_oldest_waiting_seconds", "Age of the oldest job not "
                                   "yet started, by kind.", labels=["kind"])
        workers = GaugeMetricFamily("gristmill_workers", "Live workers.", labels=[])
        slots = GaugeMetricFamily("gristmill_worker_slots", "Slots of the live workers.", labels=["use"])
        return jobs, retried, oldest, workers, slots

    def collect(self):
        from gristmill.config import load_config, metadata
        from gristmill.jobs import store

        md = metadata(self.ws)
        jobs, retried, oldest, workers, slots = self._families()
        figures = store.queue_figures(md)
        for (kind, state), n in sorted(figures["counts"].items()):
            jobs.add_metric([kind, state], n)
        for kind, n in sorted(figures["retried"].items()):
            retried.add_metric([kind], n)
        for kind, seconds in sorted(figures["oldest_waiting"].items()):
            oldest.add_metric([kind], round(seconds, 3))
        live = [w for w in store.list_workers(md, load_config(self.ws).jobs.lost_after_seconds)
                if w["status"] == "live"]
        workers.add_metric([], len(live))
        slots.add_metric(["total"], sum(w["slots"] for w in live))
        slots.add_metric(["busy"], sum(w["slots_busy"] for w in live))
        yield from (jobs, retried, oldest, workers, slots)


class _ProcessWide:
    """Everything in the process's default registry (the attempt counters and histograms, the HTTP
    figures of a server, the process's CPU and memory), forwarded into a workspace's registry."""

    def collect(self):
        yield from REGISTRY.collect()


def workspace_registry(ws) -> CollectorRegistry:
    """What ``/metrics`` of a server or worker on ``ws`` shows: this process's counters and the
    queue of the workspace (one registry per app, so several workspaces in one process do not clash)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessWide())
    registry.register(QueueCollector(ws))
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and its content type."""
    from prometheus_client import generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    return generate_latest(registry), CONTENT_TYPE_LATEST


SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created", "")}


def exported_names(collectors) -> set[str]:
    """The sample names the collectors can export (a counter ``x``: ``x_total``, ...), for checking
    that a dashboard's queries name real metrics."""
    names = set()
    for collector in collectors:
        for family in collector.describe():
            names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


JOB_COLLECTORS = (STARTED, FINISHED, RETRIED, DURATION, WAIT)
