"""Batch scoring through `gristmill predict`, and the prediction log's files."""

import json
import subprocess
import sys
import time

import duckdb
import numpy as np
import pandas as pd
import yaml

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
    raw = {"project": "toy", "sources": [{"path": "unused"}],
           "entity": {"name": "thing", "key": "thing_id"}, "features": [{"table": "t"}],
           "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
           "training": {"budget_seconds": 5, "max_trials": 1}}
    spec = parse_spec(raw, "toy.yaml")
    ws.spec_path("toy").parent.mkdir(parents=True, exist_ok=True)
    ws.spec_path("toy").write_text(yaml.safe_dump(raw))
    result = train(ws, spec, "toy-1", out / "toy-1.parquet")
    return result, frame


def test_predict_scores_a_file_in_chunks(workspace, tmp_path):
    result, frame = _trained(workspace)
    source = tmp_path / "in.parquet"
    frame.drop(columns=["y", "event_timestamp"]).assign(note="kept").to_parquet(source, index=False)
    out = gristmill("predict", "toy", str(source), "-o", str(tmp_path / "out.parquet"), "--chunk-rows", "70",
                    "--keep", "note", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["rows"], summary["chunks"], summary["model_version"]) == (300, 5, result.version)
    assert summary["missing_features"] == [] and summary["kept"] == ["note"]
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
    for source, needle in [("x.csv", "2 column(s) are not features of the model: a, b"),
                           ("x.xml", "give a .parquet")]:
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


def test_a_file_must_account_for_every_column(workspace, tmp_path):
    """One feature of two, an unknown column, a kept one: errors naming them, unless asked."""
    _trained(workspace)
    frame = pd.DataFrame({"t__x1": [0.1, 2.0, -1.0], "extra": ["a", "b", "c"]})
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    frame[["t__x1"]].to_csv(tmp_path / "one.csv", index=False)
    out = tmp_path / "o.parquet"

    unknown = gristmill("predict", "toy", str(tmp_path / "one.parquet"), "-o", str(out))
    assert unknown.returncode == 1 and "not features of the model: extra" in unknown.stderr, unknown.stderr
    missing = gristmill("predict", "toy", str(tmp_path / "one.parquet"), "-o", str(out), "--keep", "extra")
    assert missing.returncode == 1, missing.stderr
    assert "lacks 1 of the model's 2 features: t__color" in missing.stderr and "'thing_id'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and not out.exists()
    frame[["t__x1"]].to_json(tmp_path / "one.jsonl", orient="records", lines=True)
    for source in ("one.csv", "one.jsonl"):  # the same rule for every reader
        refused = gristmill("predict", "toy", str(tmp_path / source), "-o", str(out))
        assert refused.returncode == 1 and "features: t__color" in refused.stderr, refused.stderr

    allowed = gristmill("predict", "toy", str(tmp_path / "one.parquet"), "-o", str(out), "--keep", "extra",
                        "--allow-missing", "--json")
    assert allowed.returncode == 0, allowed.stderr
    summary = json.loads(allowed.stdout)
    assert summary["missing_features"] == ["t__color"] and summary["rows"] == 3
    assert pd.read_parquet(out)["extra"].tolist() == ["a", "b", "c"]
    told = gristmill("predict", "toy", str(tmp_path / "one.csv"), "-o", str(out), "--allow-missing")
    assert told.returncode == 0 and "1 of 2 features absent" in told.stdout, told.stdout + told.stderr
    absent = gristmill("predict", "toy", str(tmp_path / "one.csv"), "-o", str(out), "--keep", "nope")
    assert absent.returncode == 1 and "--keep names columns the file does not have: nope" in absent.stderr


def test_the_typed_checks_stop_what_a_scikit_learn_member_cannot_score(workspace):
    """1e308 passes as a float64 but a scikit-learn member casts to float32 and raises (a 500 before):
    the predictor refuses it as a 422 naming the field."""
    import pytest

    from gristmill.errors import InvalidRequest
    from gristmill.serving.predictor import Predictor

    rng = np.random.default_rng(3)
    n = 200
    frame = pd.DataFrame({"thing_id": [f"t{i}" for i in range(n)], "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC"),
                          "t__x1": rng.normal(size=n), "y": rng.normal(size=n)})
    out = workspace.datasets("rf")
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "rf-1.parquet", index=False)
    spec = parse_spec({"project": "rf", "sources": [{"path": "unused"}], "entity": {"name": "thing", "key": "thing_id"},
                       "features": [{"table": "t"}], "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
                       "training": {"budget_seconds": 5, "max_trials": 1, "trainers": ["random_forest"]}}, "rf.yaml")
    from gristmill.serving.batch import champion

    train(workspace, spec, "rf-1", out / "rf-1.parquet")
    _, model = champion(workspace, "rf")
    with pytest.raises(ValueError):
        model.predict_records([{"t__x1": 1e308}])  # what reached the model before
    predictor = Predictor.__new__(Predictor)
    predictor.project, predictor.spec, predictor.log = "rf", spec, None
    predictor.served, predictor.challenger = ("1", model), None
    for value in (1e308, -1e308, float("inf"), "1e400", 10**400):
        with pytest.raises(InvalidRequest, match="feature 't__x1' must be a finite number"):
            predictor.by_rows([{"t__x1": value}])
    assert len(predictor.by_rows([{"t__x1": 1e30}, {"t__x1": float("nan")}, {}])) == 3
