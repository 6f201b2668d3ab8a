"""The grammar of horizons, metric targets and volumes; templates as validated YAML data."""

import pytest

from gristmill.errors import GristmillError, SpecError
from gristmill.requirements import grammar
from gristmill.requirements.templates import get_template, load_templates


@pytest.mark.parametrize("text, days", [
    ("predict which customers will churn in the next 30 days", 30), ("churn within 2 weeks", 14),
    ("revenue next month", 30), ("over the next quarter", 91), ("90d demand", 90),
    ("sales for the next seven days", 7), ("which transactions are fraud", None)])
def test_horizons(text, days):
    found = grammar.parse_horizon(text)
    assert (found.days if found else None) == days


@pytest.mark.parametrize("text, expected", [
    ("AUC > 0.85", [("roc_auc", "min", 0.85)]), ("RMSE < 3", [("rmse", "max", 3.0)]),
    ("accuracy of at least 90%", [("accuracy", "min", 0.9)]), ("MAE below 2.5", [("mae", "max", 2.5)]),
    ("auc of 0.8 and f1 > 0.5", [("roc_auc", "min", 0.8), ("f1", "min", 0.5)]), ("R2 >= 0.7", [("r2", "min", 0.7)]),
    ("no numbers here", [])])
def test_metric_targets(text, expected):
    assert [(t.metric, t.bound, t.value) for t in grammar.parse_metric_targets(text)] == expected


def test_volumes_and_the_serving_workers_they_need():
    day = grammar.parse_volume("Production API serving 100k requests/day")
    assert day.per_day == 100_000 and day.per_second == pytest.approx(1.157, abs=1e-3)
    assert grammar.parse_volume("50 req/s").per_second == 50
    assert grammar.parse_volume("200 rps").per_second == 200
    assert grammar.parse_volume("1.5M predictions per day").per_day == 1_500_000
    assert grammar.parse_volume("nothing") is None
    assert grammar.serving_workers(day, 100, cores=2) == 1
    assert grammar.serving_workers(grammar.parse_volume("50 req/s"), 100, cores=2) == 2


def test_builtin_templates_load_and_future_objectives_validate_in_time(tmp_path):
    found = load_templates()
    assert {"churn", "fraud", "customer_lifetime_value", "demand_forecast", "lead_scoring"} <= set(found)
    assert found["customer_lifetime_value"].task == "regression"
    assert found["demand_forecast"].serving.shape == "entity_date"
    for t in found.values():
        if t.horizon_days:  # about the future: folds cut by time
            assert t.cv == "time"


def test_user_templates_are_read_validated_and_may_not_shadow_builtins(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    churn = get_template("churn").model_dump(mode="json", exclude={"source"})
    import yaml

    (folder / "upsell.yaml").write_text(yaml.safe_dump({**churn, "name": "upsell", "keywords": ["upsell"]}))
    assert get_template("upsell", tmp_path).source.endswith("upsell.yaml")
    (folder / "bad.yaml").write_text(yaml.safe_dump({**churn, "name": "bad", "colour": "red"}))
    with pytest.raises(SpecError, match="bad.yaml: colour: unknown key"):
        load_templates(tmp_path)
    (folder / "bad.yaml").write_text(yaml.safe_dump({**churn, "name": "churn"}))
    with pytest.raises(GristmillError):
        load_templates(tmp_path)
    (folder / "bad.yaml").unlink()
    (folder / "churn.yaml").write_text(yaml.safe_dump(churn))
    with pytest.raises(GristmillError, match="exists already"):
        load_templates(tmp_path)
    with pytest.raises(GristmillError, match="no template 'nope'; known: churn"):
        get_template("nope")
