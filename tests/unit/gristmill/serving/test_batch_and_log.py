"""Batch scoring through `gristmill predict`, and the prediction log's files."""

import json
import subprocess
import sys
import time

import duckdb
import numpy as np
import pandas as pd

from gristmill.serving.prediction_log import PredictionLog, records
from gristmill.spec import parse_spec
from gristmill.training.train import train


def gristmill(*args):
    return subprocess.run([sys.executable, "-m", "gristmill", *args], capture_output=True, text=True)


def _trained(ws):
    rng = np.random.default_rng(5)
    n = 300
    x1, color = rng.normal(size=n), rng.choice(["red", "blue"], n)
    y = np.where(x1 + (color == "red") > 0.5, "Yes", "No")
    frame = pd.DataFrame({"thing_id": [f"t{i}" for i in range(n)],
                          "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC"), "y": y,
                          "t__x1": x1, "t__color": color})
    out = ws.datasets("toy")
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "toy-1.parquet", index=False)
    spec = parse_spec({"project": "toy", "sources": [{"path": "unused"}],
                       "entity": {"name": "thing", "key": "thing_id"}, "features": [{"table": "t"}],
                       "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
                       "training": {"budget_seconds": 5, "max_trials": 1}}, "toy.yaml")
    result = train(ws, spec, "toy-1", out / "toy-1.parquet")
    return result, frame


def test_predict_scores_a_file_in_chunks(workspace, tmp_path):
    result, frame = _trained(workspace)
    source = tmp_path / "in.parquet"
    frame.drop(columns=["y", "event_timestamp"]).assign(note="kept").to_parquet(source, index=False)
    out = gristmill("predict", "toy", str(source), "-o", str(tmp_path / "out.parquet"), "--chunk-rows", "70",
                    "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["rows"], summary["chunks"], summary["model_version"]) == (300, 5, result.version)
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert list(scored.columns) == ["thing_id", "note", "prediction", "probability_No", "probability_Yes",
                                    "model_version"]
    from gristmill.serving.batch import champion

    _, model = champion(workspace, "toy")
    expected = model.predict_table(frame[["t__x1", "t__color"]])
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    assert np.allclose(scored["probability_Yes"], expected["probability_Yes"])


def test_predict_mistakes_are_one_line(workspace, tmp_path):
    _trained(workspace)
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    (tmp_path / "x.xml").write_text("<a/>")
    for source, needle in [("x.csv", "has none of the model's features"), ("x.xml", "give a .parquet")]:
        out = gristmill("predict", "toy", str(tmp_path / source), "-o", str(tmp_path / "o.parquet"))
        assert out.returncode == 1 and needle in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_the_prediction_log_writes_parquet_off_the_request_path(tmp_path):
    log = PredictionLog(tmp_path / "log")
    started = time.perf_counter()
    log.append(records("predict_entity", "1", 1.5, [{"a": 1.0, "b": "x"}],
                       [{"prediction": True, "probabilities": {"False": 0.2, "True": 0.8}}], ["id1"]))
    log.append(records("predict", "2", 0.7, [{"a": None, "c": 3}], [{"prediction": 12.5}]))
    assert time.perf_counter() - started < 0.05  # appending only queues
    log.close()
    files = list((tmp_path / "log").glob("date=*/*.parquet"))
    assert files and not list((tmp_path / "log").glob("date=*/.*.tmp"))
    rows = duckdb.sql(f"SELECT _endpoint, _entity_id, _model_version, _prediction, _probabilities, a, b, c "
                      f"FROM read_parquet('{tmp_path}/log/*/*.parquet', union_by_name=true) "
                      "ORDER BY _model_version").fetchall()
    assert rows == [("predict_entity", "id1", "1", "True", '{"False": 0.2, "True": 0.8}', 1.0, "x", None),
                    ("predict", None, "2", "12.5", None, None, None, 3)]


def test_records_after_close_are_written_not_lost(tmp_path):
    """The gateway closes a dropped project's log while a request may still be running."""
    log = PredictionLog(tmp_path / "log")
    log.close()
    log.append(records("predict", "3", 0.4, [{"a": 2.0}], [{"prediction": 1.5}], None, "shadow"))
    rows = duckdb.sql(f"SELECT _model_version, _variant, a FROM read_parquet('{tmp_path}/log/*/*.parquet', "
                      "union_by_name=true)").fetchall()
    assert rows == [("3", "shadow", 2.0)]
