"""The search's refit reserve: time kept back for refitting the members the ensemble may choose."""

import optuna
import pytest

from gristmill.training.search import REFIT_FACTOR, REFIT_MEMBERS, Candidate, likely_ensemble, refit_reserve


def _trial(trainer: str, value: float, seconds: float):
    return optuna.trial.create_trial(
        params={"trainer": trainer},
        distributions={"trainer": optuna.distributions.CategoricalDistribution(["linear_spline", "catboost"])},
        value=value, user_attrs={"seconds": seconds})


def test_the_refit_reserve_counts_the_best_trial_of_every_family_the_ensemble_may_add():
    cheap = [_trial("linear_spline", 0.85 - i * 1e-4, 0.5) for i in range(REFIT_MEMBERS + 4)]
    slow = _trial("catboost", 0.84, 8.0)  # ranked below every spline trial
    reserve = refit_reserve(cheap + [slow], maximize=True, ensemble=True, workers=2, k=4)
    assert reserve >= REFIT_FACTOR * 8.0 * 2 / 4  # the catboost refit is counted
    assert refit_reserve(cheap + [slow], maximize=True, ensemble=False, workers=2, k=4) == \
        REFIT_FACTOR * 0.5 * 2 / 4  # no ensemble: the best trial only


def test_with_the_likely_ensemble_known_the_reserve_counts_only_its_members():
    trials = [_trial("linear_spline", 0.85 - i * 1e-4, 0.5) for i in range(REFIT_MEMBERS + 4)]
    trials.append(_trial("catboost", 0.84, 8.0))
    for number, t in enumerate(trials):
        t.number = number
    whole_pool = refit_reserve(trials, maximize=True, ensemble=True, workers=2, k=4)
    only_best = refit_reserve(trials, maximize=True, ensemble=True, workers=2, k=4, members={0})
    assert only_best == REFIT_FACTOR * 0.5 * 2 / 4 < whole_pool
    with_catboost = refit_reserve(trials, maximize=True, ensemble=True, workers=2, k=4, members={0, len(trials) - 1})
    assert with_catboost == REFIT_FACTOR * 8.0 * 2 / 4
    # members none of which finished here (another process's): the pool rule again
    assert refit_reserve(trials, maximize=True, ensemble=True, workers=2, k=4, members={999}) == whole_pool


@pytest.mark.parametrize("task,metric_name", [("binary", "roc_auc"), ("multiclass", "log_loss"),
                                              ("regression", "rmse")])
def test_the_likely_ensemble_is_what_greedy_selection_chooses(task, metric_name):
    import numpy as np

    from gristmill.training.ensemble import greedy_weights
    from gristmill.training.task import get_metric

    rng = np.random.default_rng(3)
    n = 5000
    y = {"binary": rng.integers(0, 2, n), "multiclass": rng.integers(0, 5, n),
         "regression": rng.normal(size=n)}[task]
    truth = np.eye(5)[y] if task == "multiclass" else y.astype(float)

    def member(noise: float):
        p = truth + rng.normal(scale=noise, size=truth.shape)
        if task == "multiclass":
            p = np.exp(p) / np.exp(p).sum(axis=1, keepdims=True)
        elif task == "binary":
            p = 1 / (1 + np.exp(-p))
        return p

    found = [Candidate(i, f"t{i}", {}, 0.0, None, 1.0, member(0.8 + 0.4 * i)) for i in range(6)]
    metric = get_metric(metric_name, task)
    mask = np.ones(n, dtype=bool)
    mask[:100] = False
    likely = likely_ensemble(found, y, metric, mask, rows=n)   # every row: exactly greedy selection
    assert likely == set(greedy_weights(found, y, metric, mask, steps=10))
    assert 0 in likely
    spread = likely_ensemble(found, y, metric, mask)          # 1,000 rows: the best member still in
    assert 0 in spread and spread <= {c.number for c in found}


def test_the_first_trial_finishes_but_its_fits_stop_at_their_share(workspace, monkeypatch):
    import optuna

    from gristmill.training import search
    from gristmill.training.train import study_storage, train
    from test_train import _dataset, _spec   # the sibling module

    monkeypatch.setattr(search, "FIRST_TRIAL_SHARE", 1e-9)
    monkeypatch.setattr(search, "MIN_FIRST_FIT", 0.0)
    dataset_id, path = _dataset(workspace, "first", "multiclass")
    result = train(workspace, _spec("first", "multiclass", budget_seconds=60, max_trials=1, folds=2,
                                    trainers=["lightgbm"]), dataset_id, path)
    storage = study_storage(workspace, "first")
    (name,) = optuna.get_all_study_names(storage)
    (trial,) = optuna.load_study(study_name=name, storage=storage).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    assert trial.user_attrs["rounds"] <= 3          # stopped at its share: a round or two, kept
    assert result.version == "1"                    # and still a registered model
