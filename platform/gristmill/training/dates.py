"""Date and timestamp features: recognised at training, expanded into calendar parts by the model.

A feature column is a *date* when it holds dates or timestamps (a ``datetime64`` column: the feature
store's ``UnixTimestamp`` features, a Parquet timestamp) or ISO 8601 strings (``2024-03-05``,
``2024-03-05T10:00:00``, ``2024-03-05 10:00:00+02:00``): a sample of its values must look ISO and at
least :data:`MIN_SHARE` of all its values must parse (the rule ingestion types text columns by).
Values that do not parse are counted and reported as a training notice, then read as missing.

The model (:class:`gristmill.training.model.TabularModel`) turns each date column into numbers
named ``<column>__<part>``, with the same code at training, in batch scoring and in the service
(:func:`expand`): the calendar parts :data:`PARTS` (``hour`` and ``minute`` only where the column
has a time of day), the time itself in days since 1970-01-01 (``epoch_days``), and the days from
the date to the row's *as-of* time (``elapsed_days``): at training the label's event timestamp
(the point in time the row's features were joined at, so nothing later is seen), in the service
the request time. Only the parts that vary on the training rows are kept (:func:`varying_parts`);
``elapsed_days`` only when the as-of times vary too (with one as-of time for every row it would
only repeat ``epoch_days`` backwards). Times are read in UTC: naive ones are taken as UTC, those
with an offset are converted.

The reference is AutoGluon's ``DatetimeFeatureGenerator`` (year, month, day, day of week and the
time as a number, missing values kept apart); Gristmill adds the day of year, hour and minute, and
the elapsed time to the as-of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from gristmill.errors import InvalidRequest

#: Calendar parts, in output order (``dayofweek``: Monday 0 ... Sunday 6).
PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "minute")
EPOCH = "epoch_days"
ELAPSED = "elapsed_days"
#: Share of a column's non-missing values that must parse for it to be a date (ingestion's rule).
MIN_SHARE = 0.98
#: Values looked at first: a column is parsed whole only when this sample looks ISO.
SAMPLE = 200
_LOOKS_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?\s*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAY_US = 86_400 * 10**6
_ONE_US = timedelta(microseconds=1)
EXAMPLE = "ISO 8601, e.g. '2024-03-05' or '2024-03-05T10:00:00'"


@dataclass
class Recognised:
    """A date column found at training: how many values parsed, how many did not (read as
    missing), and one that did not."""

    column: str
    parsed: int
    failed: int = 0
    example: str | None = None

    def line(self) -> str:
        return (f"date column {self.column}: {self.failed} of {self.parsed + self.failed} values are not "
                f"ISO dates (e.g. {self.example!r}) and are read as missing")


def is_datetime(series) -> bool:
    import pandas as pd

    return pd.api.types.is_datetime64_any_dtype(series)


def recognise(frame, columns: list[str]) -> list[Recognised]:
    """The ``columns`` of ``frame`` that hold dates: datetime columns, and text columns whose
    sampled values look ISO and of which at least :data:`MIN_SHARE` parse."""
    import pandas as pd

    found = []
    for col in columns:
        series = frame[col]
        if is_datetime(series):
            found.append(Recognised(col, int(series.notna().sum())))
            continue
        if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
            continue
        values = series.dropna()
        if values.empty:
            continue
        sample = values.iloc[:SAMPLE]
        if sum(isinstance(v, str) and bool(_LOOKS_ISO.match(v)) for v in sample) < MIN_SHARE * len(sample):
            continue
        _, _, bad = parse(values.tolist(), col, strict=False)
        if bad.sum() > (1 - MIN_SHARE) * len(values):
            continue
        example = str(values.iloc[int(bad.argmax())]) if bad.any() else None
        found.append(Recognised(col, int(len(values) - bad.sum()), int(bad.sum()), example))
    return found


def _instant(value, column: str) -> int | None:
    """One value as microseconds since 1970-01-01 UTC (None: missing); an InvalidRequest when it
    is not a date. Naive times are UTC; a date alone is its midnight."""
    import numpy as np

    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidRequest(f"feature {column!r} must be a date or timestamp ({EXAMPLE}), "
                                 f"got {value!r}") from None
    elif isinstance(value, np.datetime64):
        return None if np.isnat(value) else int(value.astype("datetime64[us]").astype("int64"))
    elif (isinstance(value, float) and value != value) or type(value).__name__ == "NaTType":
        return None  # (pandas' NaT is a datetime subclass: tested first)
    if isinstance(value, datetime):  # pandas Timestamps too
        moment = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
        return (moment - _EPOCH) // _ONE_US
    if isinstance(value, date):
        return (value - date(1970, 1, 1)).days * _DAY_US
    raise InvalidRequest(f"feature {column!r} must be a date or timestamp ({EXAMPLE}), got {value!r}")


def parse(values, column: str, strict: bool = True):
    """``values`` (a list or a Series) as ``(us, missing, bad)``: int64 microseconds since 1970
    UTC (0 where missing), the missing mask, and of it the values given that are not dates.

    ``strict`` (the service's rule): a value that is not a date raises :class:`InvalidRequest`
    naming the column; otherwise it is missing and flagged in ``bad``."""
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series) and is_datetime(values):
        series = values.dt.tz_convert("UTC").dt.tz_localize(None) if values.dt.tz is not None else values
        missing = series.isna().to_numpy()
        us = series.astype("datetime64[us]").to_numpy().astype("int64")
        us[missing] = 0
        return us, missing, np.zeros(len(us), dtype=bool)
    values = list(values)
    us = np.zeros(len(values), dtype="int64")
    missing = np.zeros(len(values), dtype=bool)
    bad = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        try:
            found = _instant(value, column)
        except InvalidRequest:
            if strict:
                raise
            found, bad[i] = None, True
        if found is None:
            missing[i] = True
        else:
            us[i] = found
    return us, missing, bad


def as_datetimes(values, column: str):
    """A column of dates as a UTC ``datetime64[us]`` Series on the same index (not dates: NaT)."""
    import pandas as pd

    us, missing, _ = parse(values, column, strict=False)
    series = pd.Series(us, index=getattr(values, "index", None)).astype("datetime64[us]")
    series[missing] = pd.NaT
    return series.dt.tz_localize("UTC")


def _all_parts(us, missing, as_of_us) -> dict:
    """Every candidate output (float64, NaN where missing) of instants ``us`` at as-of ``as_of_us``."""
    import numpy as np

    days = np.floor_divide(us, _DAY_US)
    day = days.astype("datetime64[D]")
    month_start = day.astype("datetime64[M]")
    year_start = day.astype("datetime64[Y]")
    in_day = us - days * _DAY_US
    out = {
        "year": year_start.astype("int64") + 1970,
        "month": month_start.astype("int64") % 12 + 1,
        "day": (day - month_start).astype("int64") + 1,
        "dayofweek": (days + 3) % 7,  # 1970-01-01 was a Thursday
        "dayofyear": (day - year_start).astype("int64") + 1,
        "hour": in_day // (3600 * 10**6),
        "minute": in_day % (3600 * 10**6) // (60 * 10**6),
        EPOCH: us / _DAY_US,
        ELAPSED: (as_of_us - us) / _DAY_US,
    }
    for name, values in out.items():
        values = values.astype("float64")
        values[missing] = np.nan
        out[name] = values
    return out


def expand(values, column: str, parts: list[str], as_of_us) -> dict:
    """The model's numbers for one date column: ``{<column>__<part>: float64 array}`` for each of
    ``parts``, from raw ``values`` (ISO strings, datetimes, a datetime column) at the as-of times
    ``as_of_us`` (microseconds since 1970 UTC: one number, or an array of one per row). A value
    that is not a date raises :class:`InvalidRequest`."""
    us, missing, _ = parse(values, column)
    found = _all_parts(us, missing, as_of_us)
    return {output(column, p): found[p] for p in parts}


def output(column: str, part: str) -> str:
    return f"{column}__{part}"


def varying_parts(values, column: str, as_of_us) -> list[str]:
    """The parts worth keeping for a training column: those taking two values or more on the
    training rows; ``elapsed_days`` only when the as-of times vary as well."""
    import numpy as np

    us, missing, _ = parse(values, column, strict=False)
    found = _all_parts(us, missing, as_of_us)
    as_of = np.broadcast_to(np.asarray(as_of_us), us.shape)[~missing]
    keep = []
    for name in (*PARTS, EPOCH, ELAPSED):
        present = found[name][~missing]
        if len(np.unique(present)) < 2 or (name == ELAPSED and len(np.unique(as_of)) < 2):
            continue
        keep.append(name)
    return keep


def now_us() -> int:
    """The request time, in microseconds since 1970 UTC."""
    import time

    return int(time.time() * 10**6)
