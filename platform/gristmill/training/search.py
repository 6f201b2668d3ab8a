"""The model search: Optuna over every trainer within the budget, scored by K-fold cross-validation.

- Each trainer's known-good defaults are tried first (one trial each), then TPE samples the trainer
  and its parameters together, so the budget drifts to the families that do well on this table.
- Every trial fits K folds (early stopping on each fold's validation part for boosted trees) and
  reports the running score after each fold, so the median pruner stops hopeless trials early.
- Each finished trial's out-of-fold predictions are kept beside the study (``<trial>.npy``): the
  ensemble is chosen from them, and a resumed study loses none of its finished trials.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gristmill.training import trainers
from gristmill.training.trainers import Task


# Rough cost order of the families' default trials (fast first), so a short budget gets the most.
COST = {"lightgbm": 0, "linear": 1, "xgboost": 2, "extra_trees": 3, "random_forest": 4, "catboost": 5,
        "ft_transformer": 6, "text_finetune": 7}


@dataclass
class Candidate:
    """A finished trial: its trainer, parameters, CV score, rounds and out-of-fold predictions."""

    number: int
    trainer: str
    params: dict
    score: float
    rounds: int | None
    seconds: float
    oof: object  # numpy array


def make_splits(strategy: str, task: str, y, groups, times, k: int, seed: int) -> list[tuple]:
    """K (train, valid) index pairs: stratified, grouped by entity, or time-ordered (expanding)."""
    import numpy as np
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

    index = np.arange(len(y))
    if strategy == "time":
        order = np.argsort(np.asarray(times), kind="stable")
        return [(order[tr], order[va]) for tr, va in TimeSeriesSplit(n_splits=k).split(order)]
    if strategy == "group":
        return list(GroupKFold(n_splits=k).split(index, y, groups))
    if task != "regression":
        counts = np.bincount(np.asarray(y, dtype=int))
        if counts[counts > 0].min() >= k:
            return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(index, y))
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(index))


def run_search(X, y, weight, task: Task, metric, names: list[str], splits: list[tuple], timeout: float,
               study, oof_dir: Path, max_trials: int, progress: bool,
               on_trial: Callable[[object, str, dict, float, float], None]) -> list[Candidate]:
    """Optimize ``study`` for ``timeout`` seconds; return every finished trial with its OOF.

    A trial still running at the deadline stops before its next fold (as pruned), unless no trial
    has finished yet: the search always ends with at least one model."""
    import numpy as np
    import optuna

    deadline = time.monotonic() + timeout

    oof_dir.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y)
    validated = np.zeros(len(y), dtype=bool)
    for _, va in splits:
        validated[va] = True

    def objective(trial):
        started = time.monotonic()
        name = trial.suggest_categorical("trainer", names)
        trainer = trainers.get(name)
        params = trainer.suggest(trial)
        shape = (len(y), task.n_classes) if task.kind == "multiclass" else (len(y),)
        oof = np.full(shape, np.nan)
        seen = np.zeros(len(y), dtype=bool)
        rounds, history = [], []
        for step, (tr, va) in enumerate(splits):
            if time.monotonic() > deadline and _finished(trial.study):
                raise optuna.TrialPruned()  # out of time: leave the budget to the refit
            w = None if weight is None else weight[tr]
            data = trainer.inputs(X)
            valid = (data.iloc[va], y[va]) if trainer.early_stopping else (None, None)
            fitted = trainer.fit(params, task, data.iloc[tr], y[tr], w, *valid)
            oof[va] = trainer.predict(fitted, task, data.iloc[va])
            history.extend({"fold": step, **h} for h in fitted.extra.get("history", []))
            seen[va] = True
            if fitted.rounds:
                rounds.append(fitted.rounds)
            trial.report(metric.score(y[seen], oof[seen]), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        score = metric.score(y[validated], oof[validated])
        trial.set_user_attr("rounds", int(np.mean(rounds)) if rounds else None)
        trial.set_user_attr("seconds", round(time.monotonic() - started, 2))
        if history:
            trial.set_user_attr("history", history)
        np.save(oof_dir / f"{trial.number}.npy", oof)
        on_trial(trial, name, params, score, time.monotonic() - started)
        return score

    if not study.trials:  # known-good defaults first, cheapest families first
        for name in sorted(names, key=lambda n: COST.get(n, len(COST))):
            trainer = trainers.get(name)
            study.enqueue_trial({"trainer": name, **{f"{name}.{k}": v for k, v in trainer.defaults.items()}})
    finished = len([t for t in study.trials if t.state.is_finished()])
    if finished < max_trials:  # a resumed study that already has its trials only re-ensembles
        import sys

        study.optimize(objective, timeout=max(1.0, timeout), n_trials=max_trials - finished,
                       catch=(), show_progress_bar=progress and sys.stderr.isatty())
    return candidates(study, oof_dir)


def _finished(study) -> bool:
    import optuna

    return any(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False))


def candidates(study, oof_dir: Path) -> list[Candidate]:
    """Finished trials whose out-of-fold predictions are on disk, best first."""
    import numpy as np
    import optuna

    out = []
    for t in study.trials:
        path = oof_dir / f"{t.number}.npy"
        if t.state != optuna.trial.TrialState.COMPLETE or not path.is_file():
            continue
        name = t.params["trainer"]
        params = {k.split(".", 1)[1]: v for k, v in t.params.items() if k.startswith(f"{name}.")}
        out.append(Candidate(t.number, name, params, t.value, t.user_attrs.get("rounds"),
                             t.user_attrs.get("seconds", 0.0), np.load(path)))
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(out, key=lambda c: c.score, reverse=reverse)
