"""The search's refit reserve: time kept back for refitting the members the ensemble may choose."""

import optuna

from gristmill.training.search import REFIT_FACTOR, REFIT_MEMBERS, refit_reserve


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
