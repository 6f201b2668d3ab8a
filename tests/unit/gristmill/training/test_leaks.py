"""Identifier-like columns are kept out with a notice; a single near-perfect feature is flagged as a
likely leak in the result, MLflow and the promotion gate's reason (issue 16)."""

import numpy as np
import pandas as pd
import pytest

from gristmill.spec import parse_spec
from gristmill.training.leaks import identifier_columns, likely_leaks

N = 400


def _frame(seed=0, rows_per_entity=1):
    rng = np.random.default_rng(seed)
    n_entities = N // rows_per_entity
    ids = np.repeat(np.arange(n_entities), rows_per_entity)
    arrival = pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, 1500, n_entities)), "D")
    frame = pd.DataFrame({
        "c_id": [f"c{i}" for i in ids],
        "event_timestamp": arrival[ids] + pd.to_timedelta(np.tile(np.arange(rows_per_entity) * 30, n_entities), "D"),
    })
    frame["t__customer_number"] = 100_000 + ids * 7            # handed out in order: encodes time
    frame["t__account_id"] = rng.permutation(n_entities)[ids] * 13 + 5   # random, named like an id
    frame["t__member_code_id"] = [f"M{v:05d}" for v in rng.permutation(n_entities)[ids]]  # text id
    frame["t__income"] = rng.normal(50_000, 9_000, n_entities)[ids]       # unique, but measured
    frame["t__age"] = rng.integers(18, 90, n_entities)[ids]               # whole numbers, not unique
    frame["t__balance_cents"] = rng.permutation(n_entities)[ids] * 3      # unique, not id-named, random
    frame["t__plan"] = rng.choice(["a", "b", "c"], n_entities)[ids]
    return frame


FEATURES = ["t__customer_number", "t__account_id", "t__member_code_id", "t__income", "t__age",
            "t__balance_cents", "t__plan"]


@pytest.mark.parametrize("rows_per_entity", [1, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identifier_like_columns_are_found_and_measurements_are_not(seed, rows_per_entity):
    found = identifier_columns(_frame(seed, rows_per_entity), FEATURES, "c_id", "event_timestamp")
    assert {n.column for n in found} == {"t__customer_number", "t__account_id", "t__member_code_id"}
    why = {n.column: n.why for n in found}
    assert "rises with time" in why["t__customer_number"]
    assert "named like an identifier" in why["t__account_id"]


def test_keep_identifiers_keeps_a_column_and_few_entities_are_not_judged():
    frame = _frame()
    kept = identifier_columns(frame, FEATURES, "c_id", "event_timestamp", keep=["customer_number"])
    assert "t__customer_number" not in {n.column for n in kept}
    assert identifier_columns(frame.head(10), FEATURES, "c_id", "event_timestamp") == []


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_single_near_perfect_feature_is_a_likely_leak(task):
    rng = np.random.default_rng(4)
    x = rng.normal(size=N)
    y = {"binary": (x > 0).astype(int), "multiclass": np.digitize(x, [-0.5, 0.5]),
         "regression": 3 * x}[task]
    frame = pd.DataFrame({"leak": y + rng.normal(scale=0.01, size=N), "honest": x + rng.normal(scale=2, size=N),
                          "leak_text": np.array(["lo", "mid", "hi"])[np.digitize(x, [-0.5, 0.5])]})
    tr, ho = frame.iloc[:300], frame.iloc[300:]
    found = likely_leaks(tr, ho, ["leak", "honest", "leak_text"], ["leak", "honest"], y[:300], y[300:], task)
    flagged = {n.column for n in found}
    assert "leak" in flagged and "honest" not in flagged
    assert found[0].score >= 0.97 and "alone scores" in found[0].line()


def _spec(project: str, **training):
    return parse_spec({"project": project, "sources": [{"path": "unused"}],
                       "entity": {"name": "c", "key": "c_id"}, "features": [{"table": "t"}],
                       "label": {"table": "labels", "target": "y", "timestamp": "as_of"},
                       "training": {"task": "binary", "budget_seconds": 5, "max_trials": 1, **training}},
                      "l.yaml")


def _dataset(ws, project, leak=False):
    frame = _frame(5)
    rng = np.random.default_rng(5)
    late = (frame["event_timestamp"] > frame["event_timestamp"].median()).to_numpy()
    signal = frame["t__age"].to_numpy() / 90 + rng.normal(scale=0.6, size=N)
    frame["y"] = np.where(late | (signal > 1.2), "Yes", "No")  # the outcome depends on arrival time
    if leak:
        frame["t__outcome_code"] = (frame["y"] == "Yes").astype(float) + rng.normal(scale=0.01, size=N)
    out = ws.datasets(project)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{project}-set.parquet"
    frame.to_parquet(path, index=False)
    return f"{project}-set", path


def test_training_keeps_identifiers_out_and_flags_a_leak_everywhere(workspace):
    import mlflow
    from mlflow import MlflowClient

    from gristmill.training.train import train

    result = train(workspace, _spec("ids"), *_dataset(workspace, "ids", leak=True))
    notices = {n["column"]: n for n in result.feature_notices}
    assert {c for c, n in notices.items() if n["kind"] == "identifier"} == {
        "t__customer_number", "t__account_id", "t__member_code_id"}
    assert notices["t__outcome_code"]["kind"] == "leak"
    model = mlflow.pyfunc.load_model(f"models:/ids/{result.version}").unwrap_python_model().model
    assert "t__customer_number" not in model.features and "t__outcome_code" in model.features
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["identifier_columns_kept_out"] == "t__customer_number,t__account_id,t__member_code_id"
    assert run.data.tags["likely_leaks"].startswith("t__outcome_code ")
    assert "likely leak: t__outcome_code alone scores" in result.promotion["reason"]
    assert "likely leak" in MlflowClient().get_run(result.run_id).data.tags["promotion"]


def test_keep_identifiers_trains_on_the_named_column(workspace):
    import mlflow

    from gristmill.training.train import train

    result = train(workspace, _spec("keep", keep_identifiers=["customer_number"]), *_dataset(workspace, "keep"))
    assert "t__customer_number" not in {n["column"] for n in result.feature_notices}
    model = mlflow.pyfunc.load_model(f"models:/keep/{result.version}").unwrap_python_model().model
    assert "t__customer_number" in model.features


def test_a_date_in_whole_days_is_not_an_identifier_when_the_types_are_known():
    frame = _frame()
    frame["t__signup_date"] = (frame["event_timestamp"].astype("int64") // 86_400_000_000_000).astype(float)
    found = {n.column for n in identifier_columns(frame, [*FEATURES, "t__signup_date"], "c_id",
                                                  "event_timestamp",
                                                  whole=["t__customer_number", "t__account_id", "t__age",
                                                         "t__balance_cents"])}
    assert found == {"t__customer_number", "t__account_id", "t__member_code_id"}


def test_the_cli_shows_each_notice(capsys):
    from gristmill.cli.stages import show_train
    from gristmill.training.leaks import Notice

    notices = [Notice("identifier", "t__customer_number", "rises with time").as_dict(),
               Notice("leak", "t__outcome_code", "roc_auc >= 0.97 from this one column", 0.999).as_dict()]
    show_train({"model_name": "m", "version": "1", "alias": "champion", "task": "binary", "metric": "roc_auc",
                "holdout_score": 0.9, "n_trials": 1, "seconds": 1.0, "feature_notices": notices,
                "labels_left_out": {"pending": 3, "no_key": 0, "no_timestamp": 1}})
    err = " ".join(capsys.readouterr().err.split())
    assert "kept out identifier-like column t__customer_number: rises with time" in err
    assert "training.keep_identifiers: [customer_number] keeps it" in err
    assert "likely leak: t__outcome_code alone scores 0.9990 on the holdout" in err
    assert "3 labels have no target yet (pending): left out of training" in err
    assert "labels left out: 1 no timestamp" in err
