"""The understanding benchmark's pairs: at least 30, each folder builds from offline data, and every
pair's expected target, entity and timestamp are columns of the expected table in its folder."""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

from ingestion.names import snake

BENCH = Path(__file__).parents[3] / "bench" / "understanding_bench.py"


def _bench():
    spec = importlib.util.spec_from_file_location("understanding_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("understanding_bench", module)
    spec.loader.exec_module(module)
    return module


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    sep = "\t" if path.suffix == ".tsv" else None
    return pd.read_csv(path, sep=sep, engine="python", nrows=50, encoding_errors="replace")


def test_pairs_load_and_expected_columns_exist(tmp_path):
    bench = _bench()
    pairs = bench.pairs()
    assert len(pairs) >= 30 and len({p.name for p in pairs}) == len(pairs)
    templates = {"churn", "fraud", "customer_lifetime_value", "lead_scoring", "demand_forecast"}
    assert {p.expected["task"] for p in pairs} == templates
    assert sum(p.expected["target"].startswith("recipe:") for p in pairs) >= 5
    bench.build_all(tmp_path, pairs)
    for p in pairs:
        files = {snake(f.name.split(".")[0]): f for f in (tmp_path / p.name).iterdir()}
        table, _, column = p.expected["target"].removeprefix("recipe:").partition(".")
        assert table in files, (p.name, table, sorted(files))
        columns = {snake(c) for c in _read(files[table]).columns}
        wanted = {p.expected["entity"], p.expected["timestamp"]} | ({column} if column else set())
        assert wanted <= columns, (p.name, wanted - columns, sorted(columns))
        assert len(_read(files[table])) >= 20


def test_judging_counts_questions_apart_from_wrong_choices():
    bench = _bench()
    expected = {"target": "t.y", "entity": "id", "timestamp": "as_of", "task": "churn"}
    got = {"target": ("t.y", False), "entity": ("id", True), "timestamp": ("date", False), "task": ("churn", False)}
    verdict = bench.judge(expected, got)
    assert verdict == {"target": "right", "entity": "question", "timestamp": "wrong", "task": "right"}
    figures = bench.score([verdict, {f: "right" for f in bench.FIELDS}])
    assert figures["overall"] == {"right": 0.75, "question": 0.125, "wrong": 0.125}
    assert figures["entity"]["question"] == 0.5
