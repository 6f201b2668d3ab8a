"""Quality gates (``training.gate``): what a model must show on its holdout to become champion.

The checks, each on the holdout rows of the training:

- ``min`` / ``max``: the value of a named metric must be at least / at most the limit;
- ``max_regression``: the model may be at most this much worse than the current champion on the
  same holdout, in the selection metric's units;
- ``slices`` + ``max_slice_regression``: the same, on every slice of the holdout cut by the values
  of a feature column (``plan``, ``region``); slices below ``min_slice_rows`` rows, or where the
  metric is undefined (one class only), are listed as skipped with the reason;
- ``max_calibration_error``: classifiers' expected calibration error (10 equal-width bins of the
  predicted probability of the positive class, or of the top class for several classes).

The gate does not pick an alias itself: its failures go to the promotion gate
(:func:`gristmill.training.registry.decide`), which registers a failing model with the reasons and
gives it no alias, so it never becomes champion.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from gristmill.errors import DataError

BINS = 10


@dataclass
class Check:
    """One check of the gate: ``passed`` None means it was skipped (``detail`` says why)."""

    name: str
    value: float | None
    limit: float | None
    passed: bool | None
    detail: str = ""

    def line(self) -> str:
        if self.value is None:
            return f"{self.name}: {self.detail}"
        return f"{self.name} {self.value:.4g} (limit {self.limit:g}){f'; {self.detail}' if self.detail else ''}"


@dataclass
class GateResult:
    """Every check of a training's gate and the per-slice scores it recorded."""

    checks: list[Check] = field(default_factory=list)
    slice_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    calibration_error: float | None = None

    @property
    def failures(self) -> list[str]:
        return [c.line() for c in self.checks if c.passed is False]

    @property
    def skipped(self) -> list[str]:
        return [c.line() for c in self.checks if c.passed is None]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def status(self) -> str:
        if not self.checks:
            return "none"
        return "passed" if self.passed else "failed"

    def as_dict(self) -> dict:
        return {"status": self.status, "failures": self.failures, "skipped": self.skipped,
                "checks": [asdict(c) for c in self.checks], "slice_scores": self.slice_scores,
                "calibration_error": self.calibration_error}

    def tags(self) -> dict[str, str]:
        """Model-version tags: the status, the reasons, the slice scores (a later training's
        champion comparison reads them)."""
        out = {"gate": self.status}
        if self.failures:
            out["gate_failures"] = "; ".join(self.failures)[:4000]
        if self.slice_scores:
            out["gate_slices"] = json.dumps(self.slice_scores, sort_keys=True)[:4000]
        return out


def resolve_column(name: str, columns: list[str]) -> str:
    """The holdout column a slice names: ``plan`` matches ``plan`` or ``customers__plan``."""
    match = [c for c in columns if c == name or c.endswith(f"__{name}")]
    if len(match) != 1:
        shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        raise DataError(f"training.gate.slices: {name!r} is {'ambiguous' if match else 'not a column'} "
                        f"of the training set (columns: {shown})")
    return match[0]


def validate(gate, task: str, columns: list[str]) -> None:
    """Refuse, before any training, metrics that do not fit ``task`` and slices that name no column."""
    from gristmill.training.task import get_metric

    for kind in ("min", "max"):
        for name in getattr(gate, kind):
            try:
                get_metric(name, task)
            except DataError:
                raise DataError(f"training.gate.{kind}: metric {name!r} does not fit a {task} task") from None
    if gate.max_calibration_error is not None and task == "regression":
        raise DataError("training.gate.max_calibration_error: calibration is checked for classifiers, "
                        "not a regression task")
    for name in gate.slices:
        resolve_column(name, columns)


def calibration_error(y, proba, bins: int = BINS) -> float:
    """Expected calibration error: the row-weighted mean gap between the predicted probability and
    the observed frequency over ``bins`` equal-width bins (binary: of class 1; several classes:
    the top class's probability against being right)."""
    import numpy as np

    y, proba = np.asarray(y), np.asarray(proba, dtype="float64")
    if proba.ndim == 2:
        confidence, hit = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float)
    else:
        confidence, hit = proba, (y == 1).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() * abs(confidence[inside].mean() - hit[inside].mean())
    return float(total / max(len(y), 1))


def slice_scores(metric, y, scores, frame, slices: list[str], min_rows: int):
    """``{column: {value: score}}`` over the holdout ``frame`` (rows aligned with ``y``), and the
    slices left out with why."""
    import numpy as np

    y, scores = np.asarray(y), np.asarray(scores)
    out: dict[str, dict[str, float]] = {}
    skipped: list[tuple[str, str]] = []
    for name in slices:
        column = resolve_column(name, list(frame.columns))
        values = frame[column].astype("string").fillna("(missing)").to_numpy()
        out[name] = {}
        for value in sorted(set(values)):
            inside = values == value
            label = f"{name}={value}"
            if inside.sum() < min_rows:
                skipped.append((label, f"{int(inside.sum())} holdout rows, fewer than {min_rows}"))
                continue
            try:
                score = metric.score(y[inside], scores[inside])
            except ValueError as exc:  # e.g. one class only: AUC undefined
                skipped.append((label, f"{metric.name} undefined ({str(exc).splitlines()[0][:80]})"))
                continue
            if np.isfinite(score):
                out[name][str(value)] = float(score)
    return out, skipped


def _worse(metric, score: float, champion: float) -> float:
    """How much worse ``score`` is than ``champion`` (negative: better)."""
    return champion - score if metric.greater_is_better else score - champion


def check(gate, task: str, metric, y, scores, frame, champion_score: float | None = None,
          champion_slices: dict | None = None, champion_scores=None) -> GateResult:
    """Run every check of ``gate`` on the holdout (true ``y``, predicted ``scores``, the holdout
    ``frame`` for slices). The champion comes as its overall score and either its predictions on
    the same rows (``champion_scores``) or its recorded slice scores (``champion_slices``)."""
    from gristmill.training.task import get_metric

    result = GateResult()
    if gate is None or gate.is_empty():
        return result
    for kind in ("min", "max"):
        for name, limit in sorted(getattr(gate, kind).items()):
            value = get_metric(name, task).score(y, scores)
            ok = value >= limit if kind == "min" else value <= limit
            result.checks.append(Check(f"{kind} {name}", value, limit, ok,
                                       "" if ok else f"{'below' if kind == 'min' else 'above'} the limit"))
    if gate.max_regression is not None:
        if champion_score is None:
            result.checks.append(Check(f"regression {metric.name}", None, gate.max_regression, None,
                                       "no champion to compare with"))
        else:
            worse = _worse(metric, metric.score(y, scores), champion_score)
            result.checks.append(Check(f"regression {metric.name} vs champion", worse, gate.max_regression,
                                       worse <= gate.max_regression,
                                       f"champion {champion_score:.4g}"))
    if gate.slices:
        mine, skipped = slice_scores(metric, y, scores, frame, gate.slices, gate.min_slice_rows)
        result.slice_scores = mine
        for label, why in skipped:
            result.checks.append(Check(f"slice {label}", None, None, None, why))
        limit = gate.max_slice_regression if gate.max_slice_regression is not None else gate.max_regression
        theirs = champion_slices
        if champion_scores is not None:
            theirs, _ = slice_scores(metric, y, champion_scores, frame, gate.slices, gate.min_slice_rows)
        if limit is not None:
            for name, values in mine.items():
                for value, score in values.items():
                    label = f"slice {name}={value} {metric.name} vs champion"
                    other = (theirs or {}).get(name, {}).get(value)
                    if other is None:
                        why = "no champion" if champion_score is None else "the champion has no score on it"
                        result.checks.append(Check(label, None, limit, None, why))
                        continue
                    worse = _worse(metric, score, other)
                    result.checks.append(Check(label, worse, limit, worse <= limit,
                                               f"{score:.4g} against the champion's {other:.4g}"))
    if gate.max_calibration_error is not None and task != "regression":
        error = calibration_error(y, scores)
        result.calibration_error = error
        result.checks.append(Check("calibration error", error, gate.max_calibration_error,
                                   error <= gate.max_calibration_error))
    return result
