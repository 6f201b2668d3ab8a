"""The prediction log: every served prediction, appended off the request path, kept on disk.

A request hands its records to :meth:`PredictionLog.append`, which only puts them on a queue; a
background thread writes them in batches as Parquet files: at most :data:`FLUSH_SECONDS` after the
first record of a batch arrived (however steady the traffic), sooner when :data:`FLUSH_ROWS` rows
are waiting, and at exit. A process killed with SIGKILL therefore loses at most the predictions of
the last second or so (plus the one file being written)::

    <workspace>/predictions/<project>/date=YYYY-MM-DD/<time>-<pid>-<n>.parquet

One row per prediction: ``_ts`` (UTC), ``_endpoint``, ``_entity_id``, ``_model_version``,
``_variant`` (``champion``, ``challenger`` of an A/B test, or ``shadow``: scored, not returned),
``_latency_ms``, ``_prediction``, ``_probabilities`` (JSON) and one column per model feature with
the value the model saw. Files are written under a temporary name and renamed, so a reader never
sees half a file; several worker processes write side by side. Monitoring reads them all with
``read_parquet('.../*/*.parquet', union_by_name=true)``.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import queue
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FLUSH_SECONDS = 1.0  #: a record waits at most this long before its batch is written
FLUSH_ROWS = 5_000
_STOP = object()


def log_folder(root: Path, project: str) -> Path:
    return root / "predictions" / project


class PredictionLog:
    """Appends prediction records to Parquet files in ``folder`` from a background thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._counter = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name="gristmill-prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Queue ``records``; never blocks the caller (after :meth:`close`, e.g. a request still
        running when the gateway dropped its project, they are written at once instead)."""
        if not records:
            return
        if self._thread.is_alive():
            self._queue.put(records)
        else:
            self._write(records)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        import time

        buffer: list[dict] = []
        due = None  # when the oldest buffered record must be on disk
        while True:
            wait = FLUSH_SECONDS if due is None else max(0.0, due - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._write(buffer)
                return
            if item:
                if not buffer:
                    due = time.monotonic() + FLUSH_SECONDS
                buffer.extend(item)
            if buffer and (len(buffer) >= FLUSH_ROWS or time.monotonic() >= due):
                self._write(buffer)
                buffer, due = [], None

    def _write(self, rows: list[dict]) -> None:
        if not rows:
            return
        try:
            import pyarrow.parquet as pq

            now = datetime.now(timezone.utc)
            folder = self.folder / f"date={now:%Y-%m-%d}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{now:%Y%m%dT%H%M%S}-{os.getpid()}-{next(self._counter)}.parquet"
            tmp = folder / f".{name}.tmp"
            pq.write_table(_table(rows), tmp, compression="zstd")
            tmp.rename(folder / name)
        except Exception as exc:  # the log must never take the service down; say what was lost
            import logging

            logging.getLogger(__name__).error("prediction log: %d rows not written: %s", len(rows), exc)


def _table(rows: list[dict]):
    """An Arrow table over the union of the rows' keys; a column whose values mix kinds is text."""
    import pyarrow as pa

    keys = list(dict.fromkeys(k for row in rows for k in row))
    arrays = []
    for key in keys:
        values = [row.get(key) for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else (v if isinstance(v, str) else json.dumps(v, default=str))
                                    for v in values], type=pa.string()))
    return pa.Table.from_arrays(arrays, names=keys)


def records(endpoint: str, version: str, latency_ms: float, rows: list[dict], predictions: list[dict],
            ids: list[str] | None = None, variant: str = "champion") -> list[dict]:
    """Prediction-log rows for one request (``rows``: the feature values the model saw)."""
    ts = datetime.now(timezone.utc)
    out = []
    for n, (row, pred) in enumerate(zip(rows, predictions)):
        probabilities = pred.get("probabilities")
        out.append({"_ts": ts, "_endpoint": endpoint, "_entity_id": ids[n] if ids else None,
                    "_model_version": version, "_variant": variant, "_latency_ms": latency_ms,
                    "_prediction": str(pred["prediction"]),
                    "_probabilities": json.dumps(probabilities) if probabilities is not None else None,
                    **{k: v for k, v in row.items() if not k.startswith("_")}})
    return out
