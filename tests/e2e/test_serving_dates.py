"""A date feature through a real `bentoml serve`: the bento takes the date as ISO text and answers
what the model predicts in process; a missing or invalid date is a one-line 4xx, never a 5xx."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
SPEC = {"project": "dated", "sources": [{"path": "/nonexistent/unused.csv"}],
        "entity": {"name": "user", "key": "user_id"},
        "features": [{"table": "profile", "timestamp": "updated"}],
        "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
        "training": {"budget_seconds": 5, "trainers": ["lightgbm"], "max_trials": 2}}


def _build(ws, add_tables) -> str:
    """Tables with a ``last_visit`` timestamp, features, online store, a champion, its bento;
    returns an admin's token."""
    from gristmill import pipeline
    from gristmill.services import Context, invoke
    from gristmill.spec import parse_spec

    rng = np.random.default_rng(11)
    n = 300
    ids = [f"u{i}" for i in range(n)]
    visit = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, n), unit="min")
    score = rng.normal(size=n)
    add_tables(ws, "dated", {
        "profile": pd.DataFrame({"user_id": ids, "score": score, "last_visit": visit, "updated": visit.normalize()}),
        "labels": pd.DataFrame({"user_id": ids, "y": ((visit.dayofweek >= 5) | (score > 1.2)).astype(int),
                                "as_of": pd.Timestamp("2025-01-05") + pd.to_timedelta(rng.integers(0, 30, n), unit="D")})})
    local = Context.local(ws)
    token = invoke(local, "users.add", name="ada", admin=True)["token"]
    invoke(local, "projects.register", project="dated", spec=yaml.safe_dump(SPEC))
    spec = parse_spec(SPEC, "dated.yaml")
    pipeline.features_apply(ws, spec)
    dataset, _ = pipeline.features_dataset(ws, spec)
    pipeline.features_materialize(ws, spec)
    pipeline.train(ws, spec, budget=5, dataset_id=dataset)
    pipeline.deploy(ws, spec)
    return token


@pytest.fixture(scope="module")
def served(tmp_path_factory, add_tables, start_server):
    root = tmp_path_factory.mktemp("dated")
    env = {**os.environ, "GRISTMILL_WORKSPACE": str(root / "ws"), "GRISTMILL_FEATURE_REPO": str(root / "feature_repo"),
           "GRISTMILL_BENTOS": str(root / "bentos")}
    with pytest.MonkeyPatch.context() as mp:
        for key in ("GRISTMILL_WORKSPACE", "GRISTMILL_FEATURE_REPO", "GRISTMILL_BENTOS"):
            mp.setenv(key, env[key])
        from gristmill.serving.batch import champion
        from gristmill.workspace import Workspace

        ws = Workspace.resolve().ensure()
        token = _build(ws, add_tables)
        model = champion(ws, "dated")[1]
    with start_server([str(BIN / "bentoml"), "serve", "service:Dated"], root / "bentos" / "dated", env,
                      root / "bento.log") as base:
        yield {"base": base, "model": model, "headers": {"Authorization": f"Bearer {token}"}}


def test_the_bento_predicts_from_an_iso_date_what_the_model_predicts_in_process(served):
    rows = [{"profile__last_visit": "2024-06-08T14:30:00", "profile__score": 0.1},
            {"profile__last_visit": "2024-06-05", "profile__score": -0.4},
            {"profile__last_visit": "2024-06-05T16:30:00+02:00", "profile__score": 2.0}]
    reply = httpx.post(f"{served['base']}/predict", json={"rows": rows}, headers=served["headers"], timeout=60)
    assert reply.status_code == 200, reply.text
    in_process = served["model"].predict_records(rows)
    for got, want in zip(reply.json(), in_process):
        assert got["prediction"] == want["prediction"]
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-9)
    assert reply.json()[0]["probabilities"]["1"] > reply.json()[1]["probabilities"]["1"]  # Saturday vs Wednesday


@pytest.mark.parametrize("row,says", [
    ({"profile__last_visit": "next tuesday"}, "must be a date or timestamp"),
    ({"profile__last_visit": "2024-02-30"}, "must be a date or timestamp"),
    ({"profile__last_visit": 20240608}, "profile__last_visit"),
    ({"profile__score": 1.0}, "profile__last_visit"),
    ({"profile__last_visit": None}, "is required"),
])
def test_a_missing_or_invalid_date_is_a_one_line_4xx(served, row, says):
    reply = httpx.post(f"{served['base']}/predict", json={"rows": [row]}, headers=served["headers"], timeout=60)
    assert reply.status_code in (400, 422), (reply.status_code, reply.text)
    body = reply.json()
    assert "\n" not in body["error"] and "Traceback" not in reply.text, body
    # the request schema's field-level 400 (detail names the field), or the model's one-line 422
    said = body["error"] + "".join(f" {d['loc'][-1]}: {d['msg']}" for d in body.get("detail", []))
    assert says in said, body
