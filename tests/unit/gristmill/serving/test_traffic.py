"""The A/B split: stable per key and project, close to the share asked for, monotone in the share."""

from gristmill.serving import traffic


def test_split_is_stable_and_close_to_the_share():
    keys = [f"c{i}" for i in range(4000)]
    first = traffic.variants("p", keys, 0.25)
    assert first == traffic.variants("p", keys, 0.25)
    share = first.count(traffic.CHALLENGER) / len(keys)
    assert 0.22 < share < 0.28
    assert traffic.variants("p", keys, 0.0) == [traffic.CHAMPION] * len(keys)
    assert traffic.variants("p", keys, 1.0) == [traffic.CHALLENGER] * len(keys)


def test_raising_the_share_only_moves_entities_to_the_challenger():
    keys = [f"c{i}" for i in range(2000)]
    low, high = traffic.variants("p", keys, 0.1), traffic.variants("p", keys, 0.4)
    assert all(h == traffic.CHALLENGER for lo, h in zip(low, high) if lo == traffic.CHALLENGER)


def test_projects_split_independently_and_rows_have_a_canonical_key():
    keys = [f"c{i}" for i in range(2000)]
    assert traffic.variants("a", keys, 0.5) != traffic.variants("b", keys, 0.5)
    assert traffic.row_key({"x": 1, "y": "z"}) == traffic.row_key({"y": "z", "x": 1})
