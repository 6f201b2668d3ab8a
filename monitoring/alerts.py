"""Alert channels: a small registry of plugins keyed by a short name.

Every alert is written as a log line (always, whatever the job says); a job may add channels::

    alerts:
      - {type: webhook, url: "http://127.0.0.1:9000/hook", retries: 3}
      - {type: file, path: alerts.jsonl}

A channel is a class with a pydantic ``Config`` (unknown keys forbidden, every field described) and a
``send(alert)`` method; :func:`register_channel` adds one under its key. The registry fails loudly:
a duplicate key is rejected, an unknown ``type`` names the valid ones.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gristmill.errors import GristmillError

__all__ = ["Alert", "AlertChannel", "AlertError", "channel_types", "dispatch", "make_channel",
           "register_channel"]

log = logging.getLogger("gristmill.monitoring.alerts")


class AlertError(GristmillError):
    """An alert channel is misconfigured or could not deliver."""


class Alert(BaseModel):
    """What a channel receives: one job run that crossed a threshold."""

    model_config = ConfigDict(extra="forbid")

    project: str = Field(description="Project name.")
    job: str = Field(description="Monitoring job name.")
    run_id: str = Field(description="The run's id in the history table.")
    model_version: str | None = Field(description="Model version monitored.")
    reasons: list[str] = Field(description="One line per threshold crossed.")
    drift_share: float | None = Field(description="Share of drifted feature columns.")
    drifted_columns: list[str] = Field(description="Feature columns flagged as drifted.")
    report: str | None = Field(description="Path of the Evidently HTML report.")
    at: str = Field(description="When the run finished (UTC, ISO 8601).")

    def line(self) -> str:
        model = f"model v{self.model_version}" if self.model_version else "no model"
        return (f"ALERT {self.project}/{self.job} ({model}, run {self.run_id}): "
                + "; ".join(self.reasons))


class AlertChannel:
    """Base of every channel: ``Config`` validates its options; ``send`` delivers one alert."""

    key: ClassVar[str] = ""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, config: BaseModel, context: dict[str, Any]) -> None:
        self.config = config
        self.context = context  # workspace root, project: what a channel may need besides its options

    def send(self, alert: Alert) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


_CHANNELS: dict[str, type[AlertChannel]] = {}


def register_channel(cls: type[AlertChannel]) -> type[AlertChannel]:
    """Class decorator: add ``cls`` to the registry under ``cls.key`` (a duplicate is an error)."""
    if not cls.key or not isinstance(cls.key, str):
        raise AlertError(f"alert channel {cls.__name__} has no `key`")
    if cls.key in _CHANNELS:
        raise AlertError(f"alert channel {cls.key!r} is already registered "
                         f"(by {_CHANNELS[cls.key].__name__})")
    _CHANNELS[cls.key] = cls
    return cls


def channel_types() -> list[str]:
    return sorted(_CHANNELS)


def parse_channel(item: Any, where: str = "alerts") -> BaseModel:
    """Validate one ``{type: ..., options...}`` mapping against its channel's ``Config``."""
    if not isinstance(item, dict) or "type" not in item:
        raise ValueError(f"{where}: give a mapping with a `type` (one of {', '.join(channel_types())})")
    kind = item["type"]
    if kind not in _CHANNELS:
        raise ValueError(f"{where}.type: unknown alert channel {kind!r} "
                         f"(valid: {', '.join(channel_types())})")
    options = {k: v for k, v in item.items() if k != "type"}
    try:
        return _CHANNELS[kind].Config.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ValueError(f"{where}.{key}: {message}") from None


def make_channel(item: dict, context: dict[str, Any]) -> AlertChannel:
    config = parse_channel(item)
    return _CHANNELS[item["type"]](config, context)


def dispatch(alert: Alert, channels: list[dict], context: dict[str, Any]) -> list[dict]:
    """Log ``alert``, then send it to every channel; return one outcome per channel.

    A channel that fails is logged and reported in the outcome; the others still run.
    """
    log.warning(alert.line())
    outcomes = [{"type": "log", "ok": True}]
    for item in channels:
        kind = item.get("type", "?")
        try:
            make_channel(item, context).send(alert)
            outcomes.append({"type": kind, "ok": True})
        except Exception as exc:  # one broken channel must not silence the others
            log.error("alert channel %s failed: %s", kind, exc)
            outcomes.append({"type": kind, "ok": False, "error": str(exc)})
    return outcomes


# -- the built-in channels ---------------------------------------------------------------------
@register_channel
class LogChannel(AlertChannel):
    """One WARNING line on the ``gristmill.monitoring.alerts`` logger (always on; listing it is a no-op)."""

    key = "log"

    def send(self, alert: Alert) -> None:
        pass  # dispatch() already logged it


@register_channel
class WebhookChannel(AlertChannel):
    """HTTP POST of the alert as JSON; retried with exponential back-off on errors and 5xx."""

    key = "webhook"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        url: str = Field(pattern=r"^https?://", description="Where to POST the alert (http or https).")
        retries: int = Field(3, ge=0, le=10, description="Further attempts after a failed one.")
        backoff_seconds: float = Field(0.5, ge=0, le=60, description="Wait before the first retry; "
                                       "doubles each time.")
        timeout_seconds: float = Field(10, gt=0, le=120, description="Timeout of one attempt.")
        headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")

    def send(self, alert: Alert) -> None:
        import urllib.error
        import urllib.request

        cfg = self.config
        body = alert.model_dump_json().encode()
        headers = {"Content-Type": "application/json", "User-Agent": "gristmill-monitoring",
                   **cfg.headers}
        wait, last = cfg.backoff_seconds, ""
        for attempt in range(cfg.retries + 1):
            if attempt:
                time.sleep(wait)
                wait *= 2
            request = urllib.request.Request(cfg.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=cfg.timeout_seconds) as reply:
                    if reply.status < 300:
                        return
                    last = f"HTTP {reply.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code not in (408, 429):
                    break  # the receiver refuses this alert: retrying will not help
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
        raise AlertError(f"webhook {cfg.url}: not delivered after {attempt + 1} attempt(s): {last}")


@register_channel
class FileChannel(AlertChannel):
    """Appends each alert as one JSON line to a file."""

    key = "file"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        path: str = Field(description="JSONL file; a relative path is inside "
                          "<workspace>/monitoring/alerts/ and may not leave it.")

    def send(self, alert: Alert) -> None:
        path = resolve_alert_file(Path(self.context["workspace"]), self.config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(alert.model_dump_json() + "\n")


def resolve_alert_file(workspace: Path, given: str) -> Path:
    """An absolute path as given; a relative one under ``<workspace>/monitoring/alerts``."""
    path = Path(given)
    if path.is_absolute():
        return path
    base = (workspace / "monitoring" / "alerts").resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise AlertError(f"alert file {given!r} leaves {base}; give a name inside it or an absolute path")
    return target


@register_channel
class RetrainChannel(AlertChannel):
    """Starts `gristmill train <project>` in the background (its output goes to the workspace logs)."""

    key = "retrain"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        budget_seconds: int | None = Field(None, ge=5, description="Training budget (default: the spec's).")

    def send(self, alert: Alert) -> None:
        import os
        import subprocess
        import sys

        ws = Path(self.context["workspace"])
        logs = ws / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "gristmill", "--workspace", str(ws), "train", alert.project]
        if self.config.budget_seconds:
            args += ["--budget", str(self.config.budget_seconds)]
        out = open(logs / f"retrain-{alert.project}-{alert.run_id}.log", "w", encoding="utf-8")
        subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                         env={**os.environ})
        out.close()
