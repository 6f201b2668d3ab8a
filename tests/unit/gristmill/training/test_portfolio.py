"""The portfolio: learned offline on tables the benchmark never uses, opened with one configuration
of every family (never pruned), walked in order, then refined on the leading families."""

import json
import sys
from pathlib import Path

import optuna
import pytest

from gristmill.training import portfolio, trainers

ROOT = Path(__file__).resolve().parents[4]


def test_every_entry_is_a_known_trainer_inside_its_search_space():
    data = json.loads(portfolio.FILE.read_text())
    assert data["entries"]
    for entry in data["entries"]:
        trainer = trainers.get(entry["trainer"])
        assert set(entry["params"]) == set(trainer.space)
        for key, (kind, *bounds) in trainer.space.items():
            value = entry["params"][key]
            assert value in bounds[0] if kind == "choice" else bounds[0] <= value <= bounds[1], (entry, key)


def test_it_was_learned_on_none_of_the_tables_the_automl_benchmark_measures():
    sys.path.insert(0, str(ROOT / "bench" / "automl"))
    from datasets import DATASETS, PORTFOLIO_DATASETS

    learned_on = set(json.loads(portfolio.FILE.read_text())["learned_on"])
    assert learned_on <= set(PORTFOLIO_DATASETS)
    assert not learned_on & set(DATASETS)


def _file(tmp_path, entries) -> Path:
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps({"learned_on": [], "entries": [{"trainer": t, "params": p} for t, p in entries]}))
    return path


def test_the_opening_has_one_entry_per_family_cheapest_first_then_the_learned_order(tmp_path):
    lgb, knn = trainers.get("lightgbm"), trainers.get("knn")
    big = {**lgb.defaults, "num_leaves": 128}
    path = _file(tmp_path, [("catboost", trainers.get("catboost").defaults), ("lightgbm", big),
                            ("knn", {"n_neighbors": 5, "weights": "uniform"}), ("lightgbm", lgb.defaults)])
    order, opening = portfolio.plan(["knn", "lightgbm", "linear"], path)
    assert opening == 3
    # each family's first portfolio entry opens; a family the file lacks opens with its defaults
    assert order[:3] == [("lightgbm", big), ("linear", trainers.get("linear").defaults),
                         ("knn", {"n_neighbors": 5, "weights": "uniform"})]
    assert order[3:] == [("lightgbm", lgb.defaults)]   # catboost is not asked for
    assert knn.defaults not in [p for _, p in order]


@pytest.mark.parametrize("classes", [0, 2, portfolio.MANY_CLASSES, portfolio.MANY_CLASSES + 1, 32])
def test_with_many_classes_the_boosters_open_after_the_families_whose_cost_does_not_grow(classes):
    from gristmill.spec import default_trainers

    names = default_trainers()
    order, opening = portfolio.plan(names, classes=classes)
    families = [name for name, _ in order[:opening]]
    assert sorted(families) == sorted(names)            # every family still opens, once
    boosters = [families.index(n) for n in families if n in portfolio.PER_CLASS]
    others = [families.index(n) for n in families if n not in portfolio.PER_CLASS]
    if classes > portfolio.MANY_CLASSES:
        assert max(others) < min(boosters)
        assert families[:len(others)] == sorted(families[:len(others)], key=portfolio.COST.get)
    else:
        assert families == sorted(families, key=portfolio.COST.get)   # the plain cost order
        assert families[0] == "lightgbm"


def test_an_entry_two_processes_queued_at_once_runs_once():
    study = optuna.create_study()
    for _ in range(2):
        study.enqueue_trial({"x": 1.0}, user_attrs={"portfolio": 4})
    first, second = study.ask(), study.ask()
    assert not portfolio.is_duplicate(first)
    assert portfolio.is_duplicate(second)


def _train(workspace, project, names, budget, monkeypatch=None, path=None, max_trials=200):
    from test_train import _dataset, _spec   # the sibling module

    from gristmill.training.train import study_storage, train

    if path is not None:
        monkeypatch.setattr(portfolio, "FILE", path)
    dataset_id, data = _dataset(workspace, project, "binary")
    train(workspace, _spec(project, "binary", budget_seconds=budget, max_trials=max_trials, folds=3,
                           trainers=names), dataset_id, data)
    (summary,) = optuna.get_all_study_summaries(study_storage(workspace, project))
    return optuna.load_study(study_name=summary.study_name, storage=study_storage(workspace, project))


def test_the_opening_gives_every_family_a_finished_unpruned_member_in_the_planned_order(workspace):
    names = ["lightgbm", "linear", "knn", "linear_spline", "extra_trees", "xgboost"]
    order, opening = portfolio.plan(names)
    # a budget no loaded machine runs out of: the study ends at max_trials, after the opening
    study = _train(workspace, "opening", names, 120, max_trials=opening)
    trials = sorted(study.trials, key=lambda t: t.number)
    openers = [t for t in trials if t.user_attrs.get("opening")]
    assert [t.user_attrs["portfolio"] for t in openers] == list(range(opening))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in openers)
    assert [t.params["trainer"] for t in openers] == [name for name, _ in order[:opening]]
    for t, (name, params) in zip(openers, order):
        assert {k.split(".", 1)[1]: v for k, v in t.params.items() if k != "trainer"} == params


def test_after_the_portfolio_the_leading_families_are_refined(workspace, monkeypatch, tmp_path):
    names = ["lightgbm", "linear", "knn"]
    path = _file(tmp_path, [("lightgbm", trainers.get("lightgbm").defaults)])
    study = _train(workspace, "refine", names, 120, monkeypatch, path, max_trials=9)
    trials = sorted((t for t in study.trials if t.state.is_finished()), key=lambda t: t.number)
    refined = [t for t in trials if t.user_attrs.get("refine")]
    assert len([t for t in trials if "portfolio" in t.user_attrs]) == 3   # the opening only
    assert refined, "no refinement trial ran"
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and "portfolio" in t.user_attrs]
    best = portfolio.leaders(done, maximize=True)[0]
    assert refined[0].params["trainer"] == best       # the best family first
    assert {t.params["trainer"] for t in refined} <= set(names)
    # a refinement trial's parameters come from the sampler, not the portfolio
    assert any(t.params != {"trainer": t.params["trainer"],
                            **{f"{t.params['trainer']}.{k}": v
                               for k, v in trainers.get(t.params["trainer"]).defaults.items()}}
               for t in refined)


@pytest.mark.parametrize("maximize", [True, False])
def test_leaders_rank_families_by_their_best_trial(maximize):
    from types import SimpleNamespace

    done = [SimpleNamespace(value=v, params={"trainer": n}) for n, v in
            [("a", 0.5), ("b", 0.7), ("a", 0.9), ("c", 0.1), ("d", 0.6)]]
    assert portfolio.leaders(done, maximize) == (["a", "b", "d"] if maximize else ["c", "a", "d"])


def test_on_a_table_far_larger_than_the_portfolios_the_defaults_open(tmp_path):
    lgb = trainers.get("lightgbm")
    small = {**lgb.defaults, "num_leaves": 8}
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps({"learned_on": [], "max_rows": 1000,
                                "entries": [{"trainer": "lightgbm", "params": small}]}))
    order, opening = portfolio.plan(["lightgbm", "linear"], path, rows=3000)
    assert order == [("lightgbm", small), ("linear", trainers.get("linear").defaults)]
    order, opening = portfolio.plan(["lightgbm", "linear"], path, rows=3001)
    assert opening == 2
    assert order == [("lightgbm", lgb.defaults), ("linear", trainers.get("linear").defaults), ("lightgbm", small)]


def test_entries_that_would_not_end_in_time_are_passed_over_for_cheaper_ones(tmp_path, monkeypatch):
    names = ["lightgbm", "catboost", "knn"]
    monkeypatch.setattr(portfolio, "FILE", _file(tmp_path, [(n, trainers.get(n).defaults) for n in names]))
    order, _ = portfolio.plan(names)
    assert [n for n, _ in order] == ["lightgbm", "knn", "catboost"]   # cheapest first
    study = optuna.create_study(direction="maximize")

    def run_next(fits, value=0.8):
        portfolio.enqueue_next(study, names, lambda: False, True, None, fits)
        waiting = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.WAITING]
        if not waiting:
            return None
        trial = study.ask()
        trial.suggest_categorical("trainer", names)
        study.tell(trial, value)
        return trial.user_attrs.get("portfolio"), trial.user_attrs.get("refine"), trial.params["trainer"]

    assert run_next(lambda n: True) == (0, None, "lightgbm")
    assert run_next(lambda n: n != "knn") == (2, None, "catboost")     # knn (1) would not end in time
    assert run_next(lambda n: True, 0.7) == (None, True, "lightgbm")   # knn is not tried later
    assert run_next(lambda n: n == "catboost") == (None, True, "catboost")   # the leader that fits
    assert run_next(lambda n: False) is None                            # nothing fits: nothing queued
