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
