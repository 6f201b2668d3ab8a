"""The served model's preprocessing: request dicts and DataFrames give the same frame."""

import numpy as np
import pandas as pd
import pytest

from gristmill.errors import InvalidRequest
from gristmill.training.model import TabularModel


def _model():
    return TabularModel(project="p", task="binary", features=["a", "c", "b"], numeric=["a", "b"],
                        categories={"c": ["x", "y"]}, classes=[False, True])


def test_records_and_frames_prepare_the_same_values():
    rows = [{"a": 1, "b": "2.5", "c": "x"}, {"a": None, "c": "zz"}, {}, {"b": np.float32(3), "c": 7}]
    fast = _model().frame(rows)
    slow = _model().frame(pd.DataFrame.from_records(rows[:2] + [{"a": None}] + rows[3:]))
    assert list(fast.columns) == ["a", "c", "b"]
    pd.testing.assert_frame_equal(fast, slow, check_dtype=False)
    assert fast["c"][0] == "x" and pd.isna(fast["c"][1]) and pd.isna(fast["c"][3])  # unseen levels: missing
    assert np.isnan(fast["a"][1]) and fast["b"][0] == 2.5


def test_an_empty_row_is_one_row_of_missing_values():
    frame = _model().frame([{}])
    assert len(frame) == 1 and frame.isna().all(axis=None)


@pytest.mark.parametrize("value", ["lots", [1], {"x": 1}])
def test_a_non_number_is_a_422_naming_the_feature(value):
    with pytest.raises(InvalidRequest, match="feature 'a' must be a number"):
        _model().frame([{"a": value}])
