"""Date features (gristmill.training.dates): calendar parts, elapsed time to the as-of, parts that
do not vary dropped, missing and invalid values, and the model frame that serving reuses."""

import numpy as np
import pandas as pd
import pytest

from gristmill.errors import InvalidRequest
from gristmill.training import dates
from gristmill.training.model import TabularModel

US = 10**6


def _us(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1000)


def test_parts_match_pandas_calendar_for_strings_and_datetimes():
    rng = np.random.default_rng(0)
    moments = pd.Series(pd.to_datetime(rng.integers(-10**9, 3 * 10**9, 3000), unit="s"))  # 1938..2065
    iso = moments.dt.strftime("%Y-%m-%dT%H:%M:%S").tolist()
    parts = list(dates.PARTS)
    from_strings = dates.expand(iso, "d", parts, 0)
    from_series = dates.expand(moments, "d", parts, 0)
    for part in parts:
        accessor = {"dayofweek": "dayofweek", "dayofyear": "dayofyear"}.get(part, part)
        expected = getattr(moments.dt, accessor).to_numpy(dtype="float64")
        assert np.array_equal(from_strings[f"d__{part}"], expected), part
        assert np.array_equal(from_series[f"d__{part}"], expected), part


def test_offsets_are_read_in_utc_and_naive_times_as_utc():
    got = dates.expand(["2024-12-31T23:30:00-02:00", "2024-03-05", "2024-03-05T10:00:00Z"], "d",
                       ["year", "month", "day", "hour", "minute", "dayofweek"], 0)
    assert got["d__year"].tolist() == [2025, 2024, 2024]  # 23:30 at -02:00 is 01:30 UTC next year
    assert got["d__day"].tolist() == [1, 5, 5] and got["d__hour"].tolist() == [1, 0, 10]
    assert got["d__minute"].tolist() == [30, 0, 0]
    assert got["d__dayofweek"].tolist() == [2, 1, 1]  # Wednesday, Tuesday (Monday is 0)


def test_elapsed_days_run_from_the_date_to_each_rows_as_of():
    as_of = np.array([_us("2024-03-15"), _us("2024-03-05T12:00:00")])
    got = dates.expand(["2024-03-05", "2024-03-05"], "d", [dates.ELAPSED, dates.EPOCH], as_of)
    assert got["d__elapsed_days"].tolist() == [10.0, 0.5]
    assert got["d__epoch_days"].tolist() == [19787.0, 19787.0]
    future = dates.expand(["2024-03-20"], "d", [dates.ELAPSED], _us("2024-03-15"))
    assert future["d__elapsed_days"].tolist() == [-5.0]  # a date after the as-of: negative, as it is


def test_parts_that_do_not_vary_in_training_are_dropped():
    days = pd.Series(pd.date_range("2024-01-01", periods=60, freq="D"))
    as_of = dates.parse(days + pd.Timedelta(days=1), "t")[0]
    kept = dates.varying_parts(days, "d", as_of)
    # dates only (no time of day), one year, one as-of per row one day later: elapsed is constant
    assert kept == ["month", "day", "dayofweek", "dayofyear", "epoch_days"]
    stamps = pd.Series(pd.date_range("2023-12-30 08:15", periods=60, freq="433min"))
    spread = dates.parse(pd.Series(pd.Timestamp("2024-06-01"), index=range(60)), "t")[0]
    assert dates.varying_parts(stamps, "d", spread) == [*dates.PARTS, "epoch_days"]  # one as-of: no elapsed
    varied = dates.parse(stamps + pd.to_timedelta(np.arange(60) ** 2, unit="D"), "t")[0]
    assert dates.ELAPSED in dates.varying_parts(stamps, "d", varied)


def test_missing_values_give_nan_parts_and_invalid_ones_a_422():
    got = dates.expand([None, "", float("nan"), pd.NaT, "2024-03-05"], "d", ["year", "elapsed_days"],
                       _us("2024-03-06"))
    assert np.isnan(got["d__year"][:4]).all() and got["d__year"][4] == 2024
    assert np.isnan(got["d__elapsed_days"][:4]).all() and got["d__elapsed_days"][4] == 1.0
    series = pd.Series(pd.to_datetime(["2024-03-05", None]))
    assert np.isnan(dates.expand(series, "d", ["month"], 0)["d__month"][1])
    for bad in ("05/03/2024", "tomorrow", 20240305, True, [2024]):
        with pytest.raises(InvalidRequest, match="feature 'd' must be a date or timestamp"):
            dates.expand([bad], "d", ["year"], 0)


def test_iso_text_columns_are_recognised_and_their_unparsable_values_counted():
    good = [f"2024-01-{d:02d}" for d in range(1, 29)] * 4
    frame = pd.DataFrame({"ok": good, "one_bad": good[:-1] + ["2024-02-30"], "words": ["a"] * len(good),
                          "mostly_bad": good[:50] + ["n/a"] * (len(good) - 50),
                          "stamp": pd.to_datetime(good), "number": range(len(good))})
    found = {r.column: r for r in dates.recognise(frame, list(frame.columns))}
    assert set(found) == {"ok", "one_bad", "stamp"}
    assert (found["ok"].parsed, found["ok"].failed) == (112, 0)
    assert (found["one_bad"].parsed, found["one_bad"].failed, found["one_bad"].example) == (111, 1, "2024-02-30")
    assert "1 of 112 values are not ISO dates" in found["one_bad"].line()
    read = dates.as_datetimes(frame["one_bad"], "one_bad")
    assert str(read.dtype) == "datetime64[us, UTC]" and read.isna().sum() == 1 and pd.isna(read.iloc[-1])


def _model(**kw):
    return TabularModel(project="p", task="regression", features=["n", "d", "c"], numeric=["n"],
                        categories={"c": ["x"]}, dates={"d": ["year", "dayofweek", "elapsed_days"]}, **kw)


def test_the_model_frame_expands_dates_alike_from_records_and_frames():
    as_of = pd.Timestamp("2024-03-10", tz="UTC")
    rows = [{"n": 1, "d": "2024-03-05", "c": "x"}, {"n": 2, "d": "2024-03-09T12:00:00"}, {"d": None}]
    fast = _model().frame(rows, as_of=as_of)
    typed = pd.DataFrame({"n": [1, 2, None], "c": ["x", None, None],
                          "d": pd.to_datetime(["2024-03-05", "2024-03-09 12:00", None], utc=True, format="ISO8601"),
                          "event_timestamp": as_of})
    slow = _model().frame(typed)  # a training set: its event_timestamp is the as-of
    assert list(fast.columns) == ["n", "d__year", "d__dayofweek", "d__elapsed_days", "c"]
    pd.testing.assert_frame_equal(fast, slow, check_dtype=False)
    assert fast["d__elapsed_days"].tolist()[:2] == [5.0, 0.5] and np.isnan(fast["d__year"][2])
    now = _model().frame([{"d": "2000-01-01"}])  # no as-of given: the request time
    assert 365 * 20 < now["d__elapsed_days"][0] < 365 * 40


def test_a_required_date_missing_or_invalid_is_one_line_422():
    model = _model(dates_required=["d"])
    with pytest.raises(InvalidRequest, match="feature 'd' is required: a date or timestamp"):
        model.frame([{"n": 1}])
    with pytest.raises(InvalidRequest, match="feature 'd' must be a date or timestamp .* got 'soon'"):
        model.frame([{"d": "soon"}])
    assert len(_model().frame([{"n": 1}])) == 1  # not required: a missing value, as at training


def test_date_parts_survive_save_and_load(tmp_path):
    model = _model(dates_required=["d"])
    model.save(tmp_path / "m")
    loaded = TabularModel.load(tmp_path / "m")
    assert loaded.dates == model.dates and loaded.dates_required == ["d"]
