"""Monitoring job definitions: readable YAML files, or entries of the project spec.

A job says which model to watch, what to compare it against (the training-set snapshot the model
was trained on), which window of current data to check (a span of the prediction log or a file such
as a newly ingested batch), where late labels come from, the thresholds and the alert channels.
Jobs live in ``monitoring/jobs/<project>/<job>.yaml`` (``GRISTMILL_MONITORING_JOBS`` moves the
folder) or under ``monitoring.jobs`` in the project spec; a project without any has one implicit
job, ``default``, built from the spec. Example::

    name: hourly
    model: champion
    current: {source: prediction_log, hours: 24}
    thresholds: {drift_share: 0.3, missing_share_increase: 0.1}
    alerts:
      - {type: webhook, url: "http://127.0.0.1:9000/hook"}
    schedule: {cron: "0 * * * *"}

Every model forbids unknown keys; errors name the file and the key path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gristmill.errors import GristmillError, SpecError

__all__ = ["JobSpec", "find_job", "jobs_dir", "load_jobs", "write_job"]

JOB_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReferenceSpec(_Strict):
    """The baseline: a training-set snapshot."""

    dataset_id: str | None = Field(
        None, description="Training-set id (datasets/<project>/<id>.parquet); default: the set the "
        "monitored model version was trained on, else the latest.")


class WindowSpec(_Strict):
    """The current data to check."""

    source: Literal["prediction_log", "file"] = Field(
        "prediction_log", description="'prediction_log': the served predictions of the last `hours`; "
        "'file': a Parquet/CSV file of feature rows (e.g. a newly ingested batch).")
    hours: float = Field(24.0, gt=0, le=24 * 366, description="Length of the prediction-log window, "
                         "ending when the job runs.")
    path: str | None = Field(None, description="The file for source 'file'.")
    min_rows: int = Field(30, ge=1, description="Fewer rows than this in the window: the run is "
                          "recorded as skipped, no verdict.")
    sample_rows: int = Field(200_000, ge=1_000, description="Drift tests use a uniform sample of at "
                             "most this many window rows (error bound in the summary); data-quality "
                             "shares use every row.")
    seed: int = Field(0, description="Seed of the sample.")

    @model_validator(mode="after")
    def _path_for_file(self) -> "WindowSpec":
        if self.source == "file" and not self.path:
            raise ValueError("source 'file' needs `path`")
        return self


class LabelsSpec(_Strict):
    """Where late labels come from: a table joined to predictions by entity and time."""

    enabled: bool = Field(True, description="Compute target drift and model quality when labels exist.")
    table: str | None = Field(None, description="Ingested table of labels (default: the spec's label table).")
    key: str | None = Field(None, description="Entity id column (default: the spec's label key).")
    timestamp: str | None = Field(None, description="When the label was observed (default: the spec's).")
    target: str | None = Field(None, description="Label column (default: the spec's target).")
    horizon_days: float = Field(90.0, gt=0, description="A label counts for a prediction if it was "
                                "observed within this many days after it.")


class Thresholds(_Strict):
    """When a run alerts. Every threshold is crossed at or above its value."""

    drift_share: float | None = Field(None, gt=0, le=1, description="Share of drifted feature columns "
                                      "(default: the spec's monitoring.drift_share_threshold).")
    prediction_drift: bool = Field(True, description="Alert when the predictions' distribution drifted.")
    target_drift: bool = Field(True, description="Alert when the labels' distribution drifted.")
    missing_share_increase: float = Field(0.1, gt=0, le=1, description="A column's missing share rose "
                                          "by this much over the reference's.")
    new_category_share: float = Field(0.05, gt=0, le=1, description="Share of a column's values that "
                                      "are categories never seen in the reference.")
    out_of_range_share: float = Field(0.05, gt=0, le=1, description="Share of a numeric column's values "
                                      "outside the reference's [min, max].")
    quality_drop: float = Field(0.05, gt=0, description="Model quality on labelled predictions fell "
                                "this much below the holdout score (in the metric's units).")


class ScheduleSpec(_Strict):
    """When the scheduler runs the job: a cron line or a fixed interval."""

    cron: str | None = Field(None, description="Five-field crontab line, e.g. '0 * * * *'.")
    every_seconds: int | None = Field(None, ge=1, description="Fixed interval instead of cron.")
    misfire_grace_seconds: int = Field(3600, ge=1, description="A run missed (scheduler down) by at "
                                       "most this long is caught up once when the scheduler returns.")

    @model_validator(mode="after")
    def _one(self) -> "ScheduleSpec":
        if (self.cron is None) == (self.every_seconds is None):
            raise ValueError("give exactly one of `cron` and `every_seconds`")
        if self.cron is not None:
            check_cron(self.cron)
        return self


def check_cron(line: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(line, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"invalid cron line {line!r} ({exc}); e.g. '0 * * * *' is hourly") from None
    return line


class JobSpec(_Strict):
    """One monitoring job of a project."""

    name: str = Field("default", description="Job name: 1-63 lower-case letters, digits, '_' or '-'.")
    model: str = Field("champion", description="Model alias ('champion', 'challenger') or version "
                       "number of the project's registered model.")
    engine: Literal["fast", "evidently"] = Field(
        "fast", description="'fast': Gristmill's vectorised tests against cached reference statistics "
        "on a sample (same tests and thresholds as Evidently); 'evidently': Evidently decides on the "
        "full frames (slow on large windows).")
    reference: ReferenceSpec = ReferenceSpec()
    current: WindowSpec = WindowSpec()
    labels: LabelsSpec = LabelsSpec()
    thresholds: Thresholds = Thresholds()
    alerts: list[dict[str, Any]] = Field(default_factory=list, description="Alert channels besides the "
                                         "log line: {type: webhook|file|retrain, ...options}.")
    report_rows: int = Field(5_000, ge=100, le=1_000_000, description="Rows per side in the Evidently "
                             "HTML report (a sample when the frames are larger).")
    schedule: ScheduleSpec | None = Field(None, description="When `gristmill scheduler` runs the job.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not JOB_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid job name: use 1-63 lower-case letters, digits, "
                             "'_' or '-', starting with a letter")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*|[0-9]+", value):
            raise ValueError(f"{value!r}: give an alias such as 'champion' or a version number")
        return value

    @field_validator("alerts")
    @classmethod
    def _alerts(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from monitoring.alerts import parse_channel

        for n, item in enumerate(value):
            parse_channel(item, f"alerts[{n}]")
        return value


def jobs_dir() -> Path:
    """Where job files live: ``$GRISTMILL_MONITORING_JOBS`` or ``./monitoring/jobs``."""
    return Path(os.environ.get("GRISTMILL_MONITORING_JOBS") or "monitoring/jobs").resolve()


def _validate(data: object, file: str) -> JobSpec:
    from gristmill.spec import validate

    return validate(JobSpec, data, file, "name, model, current, thresholds, alerts, ...")


def load_jobs(spec, folder: Path | None = None) -> dict[str, tuple[JobSpec, str]]:
    """Every job of ``spec``'s project: name -> (job, where it is defined).

    Files in ``<folder>/<project>/*.yaml`` and ``monitoring.jobs`` of the spec; a name defined twice
    is an error naming both places. Without any: the implicit ``default`` job.
    """
    from gristmill.spec import read_yaml

    folder = folder or jobs_dir()
    found: dict[str, tuple[JobSpec, str]] = {}

    def add(job: JobSpec, where: str) -> None:
        if job.name in found:
            raise SpecError(where, "name", f"job {job.name!r} is also defined in {found[job.name][1]}")
        found[job.name] = (job, where)

    project_jobs = folder / spec.project
    if project_jobs.is_dir():
        for path in sorted(project_jobs.glob("*.y*ml")):
            data = read_yaml(path)
            job = _validate(data, str(path))
            if job.name != path.stem:
                raise SpecError(str(path), "name", f"{job.name!r} differs from the file name "
                                f"{path.stem!r}; rename one of them")
            add(job, str(path))
    for n, data in enumerate(getattr(spec.monitoring, "jobs", None) or []):
        try:
            job = _validate(data, f"{spec.project} spec: monitoring.jobs[{n}]")
        except SpecError as exc:
            raise SpecError(f"project {spec.project!r} spec", f"monitoring.jobs[{n}].{exc.key}".rstrip("."),
                            exc.problem) from None
        add(job, f"project {spec.project!r} spec (monitoring.jobs[{n}])")
    if not found:
        found["default"] = (JobSpec(), "implicit default job")
    return found


def find_job(spec, name: str, folder: Path | None = None) -> tuple[JobSpec, str]:
    jobs = load_jobs(spec, folder)
    if name not in jobs:
        raise GristmillError(f"project {spec.project!r} has no monitoring job {name!r} "
                             f"(jobs: {', '.join(sorted(jobs))})")
    return jobs[name]


def job_file(project: str, name: str, folder: Path | None = None) -> Path:
    from gristmill.workspace import check_project_name

    check_project_name(project)
    JobSpec(name=name)  # validates the name: it becomes a file name
    return (folder or jobs_dir()) / project / f"{name}.yaml"


def write_job(project: str, job: JobSpec, folder: Path | None = None) -> Path:
    """Write ``job`` as YAML (only the keys that differ from the defaults, plus its name)."""
    import yaml

    path = job_file(project, job.name, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"name": job.name, **job.model_dump(mode="json", exclude_defaults=True)}
    header = (f"# Monitoring job {job.name!r} of project {project!r}: every key is described in "
              "monitoring/jobs.py (JobSpec).\n")
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
