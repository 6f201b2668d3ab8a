"""Data drift reports: Evidently's ``DataDriftPreset`` run on two pandas frames.

:func:`run_drift_report` compares a *current* frame against a *reference* frame column by column,
writes Evidently's HTML report and Evidently's own JSON next to each other, and returns a
:class:`DriftResult` with the per-column verdicts parsed from that JSON.

Evidently and pandas are imported inside the functions that need them: importing this module costs
no more than pydantic, so CLI start-up stays fast.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gristmill.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnDrift", "DriftResult", "build_drift_report", "read_saved_verdict", "run_drift_report"]

_SAFE_STEM = re.compile(r"[A-Za-z0-9_.-]+")
_MAX_SHOWN = 5

ColumnKind = Literal["numerical", "categorical"]


class ColumnDrift(BaseModel):
    """Evidently's drift verdict for one column."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="Column name, as in both frames.")
    column_type: ColumnKind = Field(
        description="How the column was compared: as numbers or as categories."
    )
    method: str = Field(
        description="Evidently's statistical test or distance, e.g. 'K-S p_value' or "
        "'Wasserstein distance (normed)'."
    )
    score: float = Field(
        description="The test's value: a p-value (drift when small) or a distance (drift when large)."
    )
    threshold: float = Field(description="The threshold the score was compared with.")
    drifted: bool = Field(description="Evidently's own verdict for this column.")


class DriftResult(BaseModel):
    """The outcome of one drift report: where it was written and what it found.

    ``dataset_drift`` is ``drift_share >= drift_share_threshold``, where ``drift_share`` is the share
    of compared columns Evidently flagged as drifted.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Report name; the file stem of both output files.")
    html_path: Path = Field(description="Evidently's HTML report.")
    json_path: Path = Field(description="Evidently's JSON (metrics and tests) for the same run.")
    n_reference: int = Field(description="Rows in the reference frame.")
    n_current: int = Field(description="Rows in the current frame.")
    columns: list[ColumnDrift] = Field(description="Per-column verdicts, in comparison order.")
    skipped_columns: list[str] = Field(
        default_factory=list,
        description="Shared columns left out because drift cannot compare their dtype "
        "(datetimes, timedeltas, ...). Only filled when `columns` was not given.",
    )
    drifted_columns: list[str] = Field(description="Names of the columns flagged as drifted.")
    drift_share: float = Field(description="Share of compared columns flagged as drifted, in [0, 1].")
    drift_share_threshold: float = Field(
        description="Share of drifted columns at or above which the dataset counts as drifted."
    )
    dataset_drift: bool = Field(description="drift_share >= drift_share_threshold.")
    computed_at: datetime = Field(description="When the report was computed (UTC).")
    non_finite: dict[str, int] = Field(
        default_factory=dict,
        description="Per numerical column, how many current values were +inf or -inf. They are out of "
        "range, not a distribution: the drift tests compare the finite values (Evidently's binning "
        "cannot take infinities).",
    )
    not_compared: list[str] = Field(
        default_factory=list,
        description="Columns left out because one side has no value (only missing or infinite); "
        "they are not in `drift_share`'s denominator. Filled by callers that drop them.",
    )
    as_of: datetime | None = Field(
        None, description="The time the current features were read as of, when the caller chose one."
    )

    def summary_line(self) -> str:
        """One human-readable line, e.g. for a CLI or an alert."""
        n_cols, n_drift = len(self.columns), len(self.drifted_columns)
        verdict = "DATASET DRIFT" if self.dataset_drift else "no dataset drift"
        op = ">=" if self.dataset_drift else "<"
        line = (
            f"{self.name}: {verdict}: {n_drift}/{n_cols} columns drifted "
            f"(share {self.drift_share:.2f} {op} {self.drift_share_threshold:.2f})"
        )
        if self.drifted_columns:
            shown = ", ".join(self.drifted_columns[:_MAX_SHOWN])
            more = len(self.drifted_columns) - _MAX_SHOWN
            line += f" [{shown}{f', +{more} more' if more > 0 else ''}]"
        return f"{line}; reference {self.n_reference} rows, current {self.n_current} rows"


def build_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    out_dir: Path,
    *,
    name: str,
    columns: list[str] | None = None,
    drift_share_threshold: float = 0.5,
    categorical: list[str] | None = None,
) -> tuple[DriftResult, Any]:
    """Compare ``current`` against ``reference`` with Evidently's ``DataDriftPreset``; return the
    result and Evidently's snapshot (for an Evidently workspace).

    Args:
        reference: The baseline frame (e.g. the training data).
        current: The frame to check (e.g. last week's scoring requests).
        out_dir: Folder for ``<name>.html`` and ``<name>.json``; created if missing. Each file is
            written under a temporary name and renamed into place, the JSON last, so neither is
            ever half-written and an existing JSON means the report is complete.
        name: File stem of the outputs: letters, digits, ``_``, ``-`` and ``.`` only.
        columns: Columns to compare; default: every column both frames share whose dtype drift
            can compare (numbers, strings, booleans, categories), in the reference's order.
        drift_share_threshold: Share of drifted columns, in (0, 1], at or above which the dataset
            counts as drifted.
        categorical: Columns to compare as categories. Object, string, category and bool columns
            are categorical anyway; list integer-coded categories here. Every other numeric column
            is compared as numerical.

    Evidently picks each column's test: up to 1,000 reference rows, p-value tests (K-S,
    chi-square, Z; threshold 0.05, drift when p is below it); above 1,000 rows, distances
    (Wasserstein, Jensen-Shannon; threshold 0.1, drift when the distance reaches it).

    Returns:
        The per-column verdicts, the dataset verdict and the paths of both files; and Evidently's
        snapshot.

    Raises:
        DataError: a bad name, an empty frame, no shared columns, a missing or entirely empty
            column, a column whose dtype drift cannot compare.
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if not isinstance(name, str) or not _SAFE_STEM.fullmatch(name) or name in {".", ".."}:
        raise DataError(
            f"invalid report name {name!r}: use letters, digits, '_', '-' and '.' only "
            "(it becomes a file name)"
        )
    if isinstance(drift_share_threshold, bool) or not (
        isinstance(drift_share_threshold, int | float) and 0 < drift_share_threshold <= 1
    ):
        raise DataError(
            "The 'drift_share_threshold' parameter of run_drift_report must be a float in (0, 1]. "
            f"Got {drift_share_threshold!r} instead."
        )
    reference = _as_pandas(reference, "reference")
    current = _as_pandas(current, "current")
    for label, frame in (("reference", reference), ("current", current)):
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise DataError(
                f"drift report '{name}': the {label} frame is empty "
                f"({frame.shape[0]} rows x {frame.shape[1]} columns)"
            )
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if dupes:
            raise DataError(f"drift report '{name}': the {label} frame repeats columns {dupes}")

    kinds, skipped = _column_kinds(reference, current, name, columns, categorical)
    selected = list(kinds)
    _check_not_all_missing(reference, current, selected, name)
    numerical_cols = [c for c in selected if kinds[c] == "numerical"]
    reference, _ = _without_infinities(reference, numerical_cols)
    current, non_finite = _without_infinities(current, numerical_cols)

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical = [c for c in selected if kinds[c] == "numerical"]
    cats = [c for c in selected if kinds[c] == "categorical"]

    def definition() -> Any:
        # Every role list is given explicitly, so Evidently infers nothing per frame: reference and
        # current are typed the same way (its inference can differ between the two frames).
        return DataDefinition(
            numerical_columns=numerical,
            categorical_columns=cats,
            text_columns=[],
            datetime_columns=[],
            unknown_columns=[],
            list_columns=[],
        )

    computed_at = datetime.now(timezone.utc)
    report = Report(
        [DataDriftPreset(columns=selected, drift_share=float(drift_share_threshold))],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(current[selected], data_definition=definition()),
        Dataset.from_pandas(reference[selected], data_definition=definition()),
        timestamp=computed_at,
        name=name,
    )
    payload = snapshot.json()
    html = snapshot.get_html_str(as_iframe=False)

    import json

    per_column = _parse_columns(json.loads(payload), kinds, name)
    drifted = [c.column for c in per_column if c.drifted]
    share = len(drifted) / len(per_column)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"{name}.html"
    json_path = out_dir / f"{name}.json"
    _write_atomic(html_path, html)
    _write_atomic(json_path, payload)

    return DriftResult(
        name=name,
        html_path=html_path,
        json_path=json_path,
        n_reference=int(reference.shape[0]),
        n_current=int(current.shape[0]),
        columns=per_column,
        skipped_columns=skipped,
        drifted_columns=drifted,
        drift_share=share,
        drift_share_threshold=float(drift_share_threshold),
        dataset_drift=share >= drift_share_threshold,
        computed_at=computed_at,
        non_finite=non_finite,
    ), snapshot


def run_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    out_dir: Path,
    *,
    name: str,
    columns: list[str] | None = None,
    drift_share_threshold: float = 0.5,
    categorical: list[str] | None = None,
) -> DriftResult:
    """Like :func:`build_drift_report`, without Evidently's snapshot object."""
    return build_drift_report(reference, current, out_dir, name=name, columns=columns,
                              drift_share_threshold=drift_share_threshold, categorical=categorical)[0]


def _as_pandas(frame: Any, label: str) -> pd.DataFrame:
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "to_pandas"):  # polars and pyarrow frames
        return frame.to_pandas()
    raise DataError(f"the {label} data must be a pandas DataFrame, got {type(frame).__name__}")


def _column_kinds(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    name: str,
    columns: list[str] | None,
    categorical: list[str] | None,
) -> tuple[dict[str, ColumnKind], list[str]]:
    """Choose the compared columns and how each is compared; also return the skipped ones."""
    import pandas as pd
    from pandas.api import types as ptypes

    def kind_of(series: pd.Series) -> ColumnKind | None:
        dtype = series.dtype
        if (
            ptypes.is_bool_dtype(dtype)
            or ptypes.is_object_dtype(dtype)
            or ptypes.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
        ):
            return "categorical"
        if ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype):
            return "numerical"
        return None

    explicit = columns is not None
    if explicit:
        selected = list(dict.fromkeys(columns))
        if not selected:
            raise DataError(f"drift report '{name}': `columns` is empty; name at least one column")
        gaps = [
            f"{label} lacks {[c for c in selected if c not in frame.columns]}"
            for label, frame in (("reference", reference), ("current", current))
            if any(c not in frame.columns for c in selected)
        ]
        if gaps:
            raise DataError(f"drift report '{name}': unknown columns: {'; '.join(gaps)}")
    else:
        in_current = set(current.columns)
        selected = [c for c in reference.columns if c in in_current]
        if not selected:
            raise DataError(
                f"drift report '{name}': reference and current share no column "
                f"(reference: {_short(reference.columns)}; current: {_short(current.columns)})"
            )
    not_str = [c for c in selected if not isinstance(c, str)]
    if not_str:
        raise DataError(f"drift report '{name}': column names must be strings, got {not_str[:5]}")

    declared = list(dict.fromkeys(categorical or []))
    outside = [c for c in declared if c not in selected]
    if outside:
        raise DataError(
            f"drift report '{name}': `categorical` names {outside}, which "
            f"{'are not in `columns`' if explicit else 'the two frames do not share'}"
        )

    kinds: dict[str, ColumnKind] = {}
    skipped: list[str] = []
    for col in selected:
        if col in declared:
            kinds[col] = "categorical"
            continue
        found = {kind_of(reference[col]), kind_of(current[col])}
        if None in found:
            if explicit:
                raise DataError(
                    f"drift report '{name}': column '{col}' has dtype "
                    f"{reference[col].dtype} (reference) / {current[col].dtype} (current), which "
                    "drift cannot compare; leave it out, or list it in `categorical`"
                )
            skipped.append(col)
        elif "categorical" in found:
            kinds[col] = "categorical"  # e.g. numbers in the reference, strings in the current
        else:
            kinds[col] = "numerical"
    if not kinds:
        raise DataError(
            f"drift report '{name}': no shared column has a dtype drift can compare "
            f"(skipped: {_short(skipped)})"
        )
    return kinds, skipped


def _without_infinities(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """``frame`` with +-inf in ``columns`` set to missing (copied only if any), and the count per column."""
    import numpy as np
    from pandas.api import types as ptypes

    counts: dict[str, int] = {}
    for col in columns:
        if ptypes.is_numeric_dtype(frame[col].dtype) and not ptypes.is_bool_dtype(frame[col].dtype):
            n = int(np.isinf(frame[col].to_numpy(dtype="float64", na_value=np.nan)).sum())
            if n:
                counts[col] = n
    if counts:
        frame = frame.copy()
        for col in counts:
            values = frame[col].astype("float64")
            frame[col] = values.where(~np.isinf(values.to_numpy()), np.nan)
    return frame, counts


def read_saved_verdict(json_path: Path) -> dict[str, Any]:
    """The dataset verdict as Evidently saved it: compared and drifted column counts, share, verdict.

    Read from Evidently's own JSON (the ``DriftedColumnsCount`` metric, the per-column ``ValueDrift``
    tests and the share test): what its HTML shows as "Dataset Drift is detected ... N out of M".
    """
    import json

    report = json.loads(Path(json_path).read_text())
    count = next(m for m in report.get("metrics", [])
                 if str((m.get("config") or {}).get("type", "")).endswith(":DriftedColumnsCount"))
    columns = list(count["config"].get("columns") or [])
    threshold = float(count["config"]["drift_share"])
    drifted_n, share = int(count["value"]["count"]), float(count["value"]["share"])
    per_column = {}
    for test in report.get("tests", []):
        params = ((test.get("metric_config") or {}).get("params") or {})
        if str(params.get("type", "")).endswith(":ValueDrift"):
            per_column[params.get("column")] = test.get("status") == "FAIL"
    return {"compared_columns": len(columns), "drifted": drifted_n, "drift_share": share,
            "threshold": threshold, "dataset_drift": share >= threshold,
            "drifted_columns": [c for c in columns if per_column.get(c)]}


def _check_not_all_missing(
    reference: pd.DataFrame, current: pd.DataFrame, selected: list[str], name: str
) -> None:
    import numpy as np

    for label, frame in (("reference", reference), ("current", current)):
        part = frame[selected]
        numeric = part.select_dtypes("number")
        empty = set(part.columns[part.isna().all()])
        if not numeric.empty:
            empty |= set(numeric.columns[~np.isfinite(numeric.to_numpy(dtype=float)).any(axis=0)])
        if empty:
            shown = [c for c in selected if c in empty]
            raise DataError(
                f"drift report '{name}': column {shown} has no value (only missing or infinite) "
                f"in the {label} frame; leave it out"
            )


def _parse_columns(
    report: dict[str, Any], kinds: dict[str, ColumnKind], name: str
) -> list[ColumnDrift]:
    """Read per-column results from Evidently 0.7's ``Snapshot.dict()`` / ``json()``.

    Each ``ValueDrift`` metric carries the resolved method and threshold in its config and the score
    as its value; with ``include_tests=True`` a test bound to the metric's id says FAIL when Evidently
    found drift. That verdict is used as is: Evidently's tests differ in strictness (K-S drifts at
    p <= threshold, chi-square at p < threshold, Wasserstein at distance >= threshold).
    """
    verdicts: dict[str, str] = {}
    for test in report.get("tests", []):
        metric_id = (test.get("metric_config") or {}).get("metric_id")
        kind = ((test.get("metric_config") or {}).get("params") or {}).get("type", "")
        if metric_id and kind.endswith(":ValueDrift"):
            verdicts[metric_id] = test.get("status", "")

    found: dict[str, ColumnDrift] = {}
    for metric in report.get("metrics", []):
        config = metric.get("config") or {}
        if not str(config.get("type", "")).endswith(":ValueDrift"):
            continue
        column, method, threshold = config.get("column"), config.get("method"), config.get("threshold")
        score = metric.get("value")
        status = verdicts.get(metric.get("id", ""))
        if column not in kinds or method is None or threshold is None or score is None:
            continue
        if status in ("FAIL", "SUCCESS"):
            drifted = status == "FAIL"
        else:  # no verdict from Evidently: apply the documented rule
            drifted = score < threshold if "p_value" in method else score >= threshold
        found[column] = ColumnDrift(
            column=column,
            column_type=kinds[column],
            method=method,
            score=float(score),
            threshold=float(threshold),
            drifted=drifted,
        )
    missing = [c for c in kinds if c not in found]
    if missing:
        raise DataError(
            f"drift report '{name}': Evidently returned no drift result for columns {missing}"
        )
    return [found[c] for c in kinds]


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _short(names: Any) -> str:
    names = [str(n) for n in names]
    more = len(names) - _MAX_SHOWN
    return ", ".join(names[:_MAX_SHOWN]) + (f", +{more} more" if more > 0 else "") or "none"
