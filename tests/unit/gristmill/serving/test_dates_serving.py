"""A project with a date feature through the real stack: an ingested timestamp column becomes a Feast
``UnixTimestamp`` feature, the model expands it, and the service (Predictor, its request schema)
takes the date as ISO text and predicts exactly what the model predicts in process."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from gristmill.errors import InvalidRequest

SPEC = {"project": "visits", "sources": [{"path": "/nonexistent/unused.csv"}],
        "entity": {"name": "user", "key": "user_id"},
        "features": [{"table": "profile", "timestamp": "updated"}],
        "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
        "training": {"budget_seconds": 5, "trainers": ["lightgbm"], "max_trials": 2}}


def build(ws, add_tables) -> dict:
    """Ingested-like tables (a ``last_visit`` timestamp per user), features, a training set with
    label times spread over a month, the online store, a trained champion."""
    from gristmill import pipeline
    from gristmill.services import Context, invoke
    from gristmill.spec import parse_spec

    rng = np.random.default_rng(5)
    n = 400
    ids = [f"u{i}" for i in range(n)]
    visit = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, n), unit="min")
    score = rng.normal(size=n)
    weekend = np.asarray(visit.dayofweek >= 5)
    tables = {"profile": pd.DataFrame({"user_id": ids, "score": score, "last_visit": visit,
                                       "updated": visit.normalize()}),
              "labels": pd.DataFrame({"user_id": ids, "y": (weekend | (score > 1.2)).astype(int),
                                      "as_of": pd.Timestamp("2025-01-05") + pd.to_timedelta(
                                          rng.integers(0, 30, n), unit="D")})}
    add_tables(ws, "visits", tables)
    invoke(Context.local(ws), "projects.register", project="visits", spec=yaml.safe_dump(SPEC))
    spec = parse_spec(SPEC, "visits.yaml")
    pipeline.features_apply(ws, spec)
    dataset, path = pipeline.features_dataset(ws, spec)
    pipeline.features_materialize(ws, spec)
    result = pipeline.train(ws, spec, budget=5, dataset_id=dataset)
    return {"spec": spec, "tables": tables, "dataset": pd.read_parquet(path), "result": result}


@pytest.fixture
def visits(workspace, add_tables):
    return {"ws": workspace, **build(workspace, add_tables)}


def _champion(ws):
    from gristmill.serving.batch import champion

    return champion(ws, "visits")[1]


def test_the_date_reaches_the_model_as_a_date_and_serves_from_iso_text(visits):
    from gristmill.serving.predictor import Predictor

    ws, data = visits["ws"], visits["dataset"]
    assert str(data["profile__last_visit"].dtype) == "datetime64[us, UTC]"  # not whole-day floats
    model = _champion(ws)
    assert set(model.dates) == {"profile__last_visit"} and "profile__last_visit" in model.dates_required
    assert {"hour", "dayofweek", "elapsed_days"} <= set(model.dates["profile__last_visit"])
    assert "year" not in model.dates["profile__last_visit"]  # one year only: a part that does not vary
    predictor = Predictor(ws, "visits", log=False)
    rows = [{"profile__last_visit": "2024-06-08T14:30:00", "profile__score": 0.1},   # a Saturday
            {"profile__last_visit": "2024-06-05T14:30:00+00:00", "profile__score": 0.1},  # a Wednesday
            {"profile__last_visit": "2024-06-05T16:30:00+02:00", "profile__score": 0.1}]  # the same instant
    served = predictor.by_rows(rows)
    typed = [{**r, "profile__last_visit": pd.Timestamp(r["profile__last_visit"]).tz_convert("UTC")
              if pd.Timestamp(r["profile__last_visit"]).tzinfo else pd.Timestamp(r["profile__last_visit"])}
             for r in rows]
    in_process = model.predict_records(typed)
    for got, want in zip(served, in_process):
        assert got["prediction"] == want["prediction"]
        assert all(math.isclose(got["probabilities"][k], p, abs_tol=1e-9) for k, p in want["probabilities"].items())
    assert served[1]["probabilities"] == pytest.approx(served[2]["probabilities"], abs=1e-9)
    assert served[0]["probabilities"]["1"] > served[1]["probabilities"]["1"] + 0.3  # the weekend is learnt

    # by entity: the online store's date (a datetime) gives what the training row's date gives
    user = visits["tables"]["profile"].iloc[3]
    by_id = predictor.by_entities([user["user_id"]])[0]
    direct = model.predict_records([{"profile__last_visit": user["last_visit"].isoformat(),
                                     "profile__score": user["score"]}])[0]
    assert by_id["probabilities"] == pytest.approx(direct["probabilities"], abs=1e-9)


def test_a_missing_or_invalid_date_is_a_one_line_4xx(visits):
    from pydantic import ValidationError

    from gristmill.serving.predictor import Predictor
    from gristmill.serving.schema import row_model

    predictor = Predictor(visits["ws"], "visits", log=False)
    for row, says in (({"profile__last_visit": "next tuesday"}, "must be a date or timestamp"),
                      ({"profile__last_visit": "2024-02-30"}, "must be a date or timestamp"),
                      ({"profile__score": 1.0}, "feature 'profile__last_visit' is required"),
                      ({"profile__last_visit": None}, "feature 'profile__last_visit' is required")):
        with pytest.raises(InvalidRequest, match=says) as caught:
            predictor.by_rows([row])
        assert caught.value.http_status == 422 and "\n" not in str(caught.value)
    Row = row_model(visits["ws"], "visits")
    assert Row.model_validate({"profile__last_visit": "2024-06-08"}).model_dump(by_alias=True)[
        "profile__last_visit"] == "2024-06-08"
    for bad in ({"profile__last_visit": "08/06/2024"}, {"profile__last_visit": 20240608}, {"profile__score": 1.0}):
        with pytest.raises(ValidationError):
            Row.model_validate(bad)
    schema = Row.model_json_schema()
    assert "profile__last_visit" in schema["required"]
    assert "ISO 8601" in schema["properties"]["profile__last_visit"]["description"]
