"""Feature names carry their table's name once (issue 16: `turnaround__turnaround__collect_to_receive_h`)."""

import pandas as pd
import pytest

from gristmill.errors import DataError
from gristmill.features.naming import feature_name
from gristmill.features.tables import build_feature_tables
from gristmill.spec import parse_spec


@pytest.mark.parametrize("table,column,expected", [
    ("turnaround", "collect_to_receive_h", "turnaround__collect_to_receive_h"),   # unchanged
    ("turnaround", "turnaround__collect_to_receive_h", "turnaround__collect_to_receive_h"),
    ("turnaround", "turnaround__turnaround__x", "turnaround__x"),
    ("turnaround", "Turnaround__x", "turnaround__x"),
    ("events", "amount_sum_30d", "events__amount_sum_30d"),                      # unchanged
    ("events", "events_count", "events__events_count"),    # one underscore: the column's own word
    ("t", "t__", "t__t__"),                                # a bare prefix is a column name
    ("orders", "customers__x", "orders__customers__x"),    # another table's prefix stays
])
def test_the_table_is_named_once(table, column, expected):
    assert feature_name(table, column) == expected


def _spec(features):
    return parse_spec({"project": "names", "sources": [{"path": "unused"}],
                       "entity": {"name": "c", "key": "c_id"}, "features": features,
                       "label": {"table": "labels", "target": "y", "timestamp": "as_of"}}, "n.yaml")


def _tables(columns: dict):
    ts = pd.to_datetime(["2024-01-01", "2024-01-02"])
    return {"turnaround": pd.DataFrame({"c_id": ["a", "b"], "ts": ts, **columns}),
            "labels": pd.DataFrame({"c_id": ["a", "b"], "as_of": ts, "y": [0, 1]})}


@pytest.mark.parametrize("kind", ["snapshot", "events"])
def test_prefixed_columns_of_snapshot_and_event_tables(kind, workspace, add_tables):
    add_tables(workspace, "names", _tables({"turnaround__collect_to_receive_h": [1.0, 2.0],
                                            "plain": [3.0, 4.0]}))
    manifest = build_feature_tables(workspace, _spec([{"table": "turnaround", "timestamp": "ts",
                                                       "kind": kind}]))
    names = [f.name for t in manifest.tables for f in t.features]
    assert not [n for n in names if n.count("turnaround__") > 1], names
    if kind == "snapshot":
        assert set(names) == {"turnaround__collect_to_receive_h", "turnaround__plain"}
    else:
        assert {"turnaround__collect_to_receive_h_sum", "turnaround__plain_sum_30d"} <= set(names)
    assert set(names) <= set(pd.read_parquet(manifest.tables[0].path).columns)


def test_two_columns_that_would_share_a_name_are_an_error(workspace, add_tables):
    add_tables(workspace, "names", _tables({"turnaround__h": [1.0, 2.0], "h": [3.0, 4.0]}))
    with pytest.raises(DataError, match=r"features\[0\].*turnaround__h"):
        build_feature_tables(workspace, _spec([{"table": "turnaround", "timestamp": "ts"}]))
