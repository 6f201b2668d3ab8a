from pathlib import Path

import pytest
import yaml

from gristmill.errors import SpecError
from gristmill.spec import load_spec, parse_spec

DEMO_SPEC = Path(__file__).resolve().parents[3] / "platform" / "gristmill" / "demo" / "churn_demo.yaml"


def _demo() -> dict:
    return yaml.safe_load(DEMO_SPEC.read_text())


def test_demo_spec_is_valid():
    spec = load_spec(DEMO_SPEC)
    assert spec.project == "churn_demo"
    assert spec.label.target == "churned"
    assert spec.training.budget_seconds > 0


def test_unknown_key_names_file_and_key_path():
    data = _demo()
    data["training"]["budjet"] = 10
    with pytest.raises(SpecError) as info:
        parse_spec(data, "churn.yaml")
    assert str(info.value).startswith("churn.yaml: training.budjet: unknown key")


def test_missing_target_names_the_key():
    data = _demo()
    del data["label"]["target"]
    with pytest.raises(SpecError, match=r"^churn.yaml: label.target: field required$"):
        parse_spec(data, "churn.yaml")


def test_list_items_are_indexed_in_the_key_path():
    data = _demo()
    data["features"][1]["kind"] = "stream"
    with pytest.raises(SpecError, match=r"features\[1\]\.kind"):
        parse_spec(data, "s.yaml")


@pytest.mark.parametrize("name", ["Churn", "1abc", "a__b", "a-b", "x" * 70, ""])
def test_bad_project_names_are_refused(name):
    data = _demo()
    data["project"] = name
    with pytest.raises(SpecError, match="project"):
        parse_spec(data, "s.yaml")


def test_events_need_a_timestamp():
    data = _demo()
    data["features"][2].pop("timestamp")
    with pytest.raises(SpecError, match="features\\[2\\].*timestamp"):
        parse_spec(data, "s.yaml")


def test_invalid_yaml_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("project: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert "bad.yaml" in str(info.value) and "\n" not in str(info.value)


def test_a_registered_spec_reads_back_including_reused_tables():
    """The workspace keeps specs with every default written out; a reused table must still load."""
    from gristmill.spec import dump_spec

    spec = parse_spec({"project": "two", "sources": [{"path": "labels.csv"}],
                       "entity": {"name": "customer", "key": "customer_id"},
                       "features": [{"table": "profiles", "project": "one"}],
                       "label": {"table": "labels", "target": "y", "timestamp": "as_of"}}, "two.yaml")
    again = parse_spec(yaml.safe_load(dump_spec(spec)), "project.yaml")
    assert again == spec
    with pytest.raises(SpecError, match="takes only `table` and `project`"):
        parse_spec({**yaml.safe_load(dump_spec(spec)),
                    "features": [{"table": "profiles", "project": "one", "windows": [3]}]}, "two.yaml")


def test_the_default_trainers_are_every_tabular_family_and_the_mlp_where_torch_is(monkeypatch):
    import sys

    from gristmill.training import trainers

    data = _demo()
    data["training"].pop("trainers", None)
    names = parse_spec(data, "churn.yaml").training.trainers
    assert {"linear_spline", "knn", "mlp"} <= set(names) and set(names) <= set(trainers.names())
    assert "ft_transformer" not in names and "text_finetune" not in names  # chosen by name only
    monkeypatch.setitem(sys.modules, "torch", None)  # as if not installed
    assert "mlp" not in parse_spec(data, "churn.yaml").training.trainers  # no torch: no mlp by default
    data["training"]["trainers"] = ["knn", "mlp"]
    assert parse_spec(data, "churn.yaml").training.trainers == ["knn", "mlp"]
    data["training"]["trainers"] = ["knn", "kmeans"]
    with pytest.raises(SpecError, match=r"training.trainers.1"):
        parse_spec(data, "churn.yaml")
