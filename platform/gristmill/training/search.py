"""The model search: Optuna over every trainer within the budget, scored by K-fold cross-validation.

- The portfolio comes first (:mod:`gristmill.training.portfolio`): a learned, ordered list of strong
  configurations, opening with one of every family; then TPE tunes the families that lead.
- A trial fits its K folds in parallel, one thread per fit and as many fits at once as there are
  cores (:class:`Pace`): on small and mid-sized tables two single-threaded fits finish well before
  two two-threaded fits one after the other. It reports the running score after each fold, so the
  median pruner stops hopeless trials early.
- Time is spent where it counts. A trial that would not end before the search's deadline is not
  started; the deadline leaves room for the refit, estimated from the finished trials. Every fit
  may take only its share of the search (:data:`TRIAL_SHARE`): a fit past it, a pruned trial or the
  deadline ends boosting at the round reached (``Task.stop``), keeping what was learnt. The first
  trial is the exception: it always finishes, so every search ends with a model; its fits stop only
  at :data:`FIRST_TRIAL_SHARE` of the search.
- Each finished trial's out-of-fold predictions, and the average of its fold models' predictions
  of the holdout, are kept beside the study (``<trial>.npy``, ``<trial>.holdout.npy``): the
  ensemble is chosen from the former and scored on the latter, and a resumed study loses none of
  its finished trials.
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from gristmill.training import portfolio, trainers
from gristmill.training.trainers import Task


#: The share of the search one trial may take at most: its fits stop at their part of it.
TRIAL_SHARE = 0.4
#: The share of the search the first trial may take: it is never pruned or skipped, but its fits
#: stop there (each at least :data:`MIN_FIRST_FIT` seconds, so a tiny budget still gets a real model).
FIRST_TRIAL_SHARE = 0.6
MIN_FIRST_FIT = 10.0
#: A refit on every labelled row costs about this many times one fold's fit: 1.56 times the rows
#: (4 folds, a 20% holdout) and a quarter more rounds (measured on diamonds at 300 s: CatBoost 2.0).
REFIT_FACTOR = 2.0
#: The best trials the refit reserve counts on before out-of-fold predictions say which members
#: the ensemble chooses (greedy selection rarely keeps more distinct ones of one family); the best
#: trial of every other family is counted too (:func:`refit_reserve`).
REFIT_MEMBERS = 6
#: The most of the search the refit reserve may keep when members can be served as their fold
#: models: a member whose refit would not fit in it is bagged instead (a 22 s CatBoost trial on ames
#: kept 22 s for its refit and ended a 60 s search at 33 s; it was then bagged anyway).
REFIT_SHARE = 0.2
#: When the search estimates the likely ensemble after each finished trial, greedy selection looks
#: at an even spread of this many out-of-fold rows for this many steps: about 0.1 s for 20 trials
#: (all 38k rows of flights and 25 steps cost 0.6 s a finished trial).
LIKELY_ROWS, LIKELY_STEPS = 1000, 10
#: Trials skipped in a row for lack of time after which the search ends.
MAX_LATE = 5


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_folds(cores: int | None = None) -> int:
    """Folds that keep every core busy: the smallest multiple of the parallel fits that is at least
    4 (5 folds on 2 cores run as 2 + 2 + 1, the last fold alone), or 5 on one core."""
    cores = cores or available_cores()
    if cores == 1:
        return 5
    workers = min(cores, 10)
    return min(10, workers * math.ceil(4 / workers))


@dataclass
class Pace:
    """How a training spends its time: the moment everything should be done (``time.monotonic``),
    the seconds needed after the search besides the refit (holdout, logging, registration), and how
    many fits run at once with how many threads each."""

    end: float
    after_search: float
    workers: int
    threads: int

    @classmethod
    def for_budget(cls, end: float, after_search: float, folds: int, cores: int | None = None) -> "Pace":
        cores = cores or available_cores()
        workers = max(1, min(cores, folds))
        return cls(end, after_search, workers, max(1, cores // workers))

    def map(self, function: Callable, items: list) -> list:
        """``function`` over ``items`` with :attr:`workers` threads, results in order."""
        if self.workers == 1 or len(items) == 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(function, items))


@dataclass
class Candidate:
    """A finished trial: its trainer, parameters, CV score, rounds, out-of-fold predictions and the
    average of its fold models' predictions of the holdout (None without a holdout)."""

    number: int
    trainer: str
    params: dict
    score: float
    rounds: int | None
    seconds: float
    oof: object  # numpy array
    holdout: object = None


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


def run_search(X, y, weight, task: Task, metric, names: list[str], splits: list[tuple], pace: Pace,
               study, oof_dir: Path, max_trials: int, progress: bool,
               on_trial: Callable[[object, str, dict, float, float], None], X_holdout=None,
               ensemble: bool = True, trial_attrs: dict | None = None,
               keep_refit_time: bool = True) -> list[Candidate]:
    """Optimize ``study`` until the deadline ``pace`` sets or ``max_trials`` trials of the study
    completed (pruned ones do not count); return every finished trial, best first.

    The search always ends with at least one model: the first trial is never cut short, whatever
    the budget (a tiny budget is overrun rather than answered with a model of a few rounds).
    ``trial_attrs`` are set as user attributes of every trial (the process and job running it).
    With ``X_holdout`` (the holdout is scored by the fold models) each finished trial's fold models
    are kept beside its predictions (:func:`save_folds`), so a member whose refit does not fit the
    time left can be served as its bag of fold models; ``keep_refit_time=False`` (``training.refit:
    bag``) keeps no time for refits at all."""
    import numpy as np
    import optuna

    oof_dir.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y)
    validated = np.zeros(len(y), dtype=bool)
    for _, va in splits:
        validated[va] = True
    k = len(splits)
    span = max(1.0, pace.end - pace.after_search - time.monotonic())
    fit_share = TRIAL_SHARE * span / math.ceil(k / pace.workers)
    first_share = FIRST_TRIAL_SHARE * span / math.ceil(k / pace.workers)
    maximize = study.direction.name == "MAXIMIZE"
    portfolio_end = time.monotonic() + portfolio.PORTFOLIO_SHARE * span

    def next_trial(*_args) -> None:
        portfolio.enqueue_next(study, names, lambda: time.monotonic() > portfolio_end, maximize, len(y), fits,
                               task.n_classes)

    def finished() -> list:
        return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.user_attrs.get("seconds") is not None]

    likely: dict = {"count": -1, "members": None}

    def likely_members(done: list) -> set[int] | None:
        """The trials greedy selection chooses from those finished (recomputed when one more
        finished); None when their out-of-fold predictions are not all on disk."""
        if not ensemble:
            return None
        if likely["count"] != len(done):
            likely["count"] = len(done)
            found = candidates(study, oof_dir)
            likely["members"] = (likely_ensemble(found, y, metric, validated)
                                 if len(found) == len(done) else None)
        return likely["members"]

    def search_end(done: list) -> float:
        """When the search must stop so the refit of the likely ensemble still fits the budget."""
        if not keep_refit_time:  # members are served as their fold models: nothing to refit
            return pace.end - pace.after_search
        reserve = refit_reserve(done, maximize, ensemble, pace.workers, k, likely_members(done))
        if X_holdout is not None:  # fold models are kept: what does not fit is bagged
            reserve = min(reserve, REFIT_SHARE * span)
        return pace.end - pace.after_search - reserve

    late: list[int] = []  # trials just skipped for lack of time

    def expected_seconds(name: str, done: list) -> float:
        """A trial of ``name``: as long as the median of its family's, or of all, finished trials."""
        same = [t.user_attrs["seconds"] for t in done if t.params.get("trainer") == name]
        return float(np.median(same or [t.user_attrs["seconds"] for t in done]))

    def fits(name: str) -> bool:
        done = finished()
        return not done or time.monotonic() + expected_seconds(name, done) <= search_end(done)

    def objective(trial):
        started = time.monotonic()
        for attr, value in (trial_attrs or {}).items():
            trial.set_user_attr(attr, value)
        name = trial.suggest_categorical("trainer", names)
        trainer = trainers.get(name)
        params = trainer.suggest(trial)
        if portfolio.is_duplicate(trial):
            raise optuna.TrialPruned("another process ran this portfolio entry")
        opening = bool(trial.user_attrs.get("opening"))  # never pruned by the median rule
        done = finished()
        # the first trial always finishes, but its fits stop at a larger share (with a 32-class
        # LightGBM on 1,500 rows as its one trial, a 60 s training took 103 s when it could run on)
        hard_end, share = math.inf, max(MIN_FIRST_FIT, first_share)
        if done:
            share = fit_share
            hard_end = search_end(done)
            expected = expected_seconds(name, done)
            if started + min(t.user_attrs["seconds"] for t in done) > hard_end:
                trial.study.stop()  # not even the quickest trial would end in time
                raise optuna.TrialPruned("out of time")
            if started + expected > hard_end:
                late.append(trial.number)
                if len(late) >= MAX_LATE:  # the sampler keeps asking for what no longer fits
                    trial.study.stop()
                raise optuna.TrialPruned("would not end before the deadline")
            late.clear()
        folds = _Folds(trainer, params, replace(task, threads=pace.threads), X, y, weight, splits,
                       X_holdout, hard_end, share)
        shape = (len(y), task.n_classes) if task.kind == "multiclass" else (len(y),)
        oof = np.full(shape, np.nan)
        holdout = None
        seen = np.zeros(len(y), dtype=bool)
        rounds, history = [], []
        fitted_folds: list = [None] * k
        with ThreadPoolExecutor(pace.workers) as pool:
            pending = {pool.submit(folds.fit, i) for i in range(k)}
            try:
                step = 0
                while pending:
                    complete, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in complete:
                        i, fitted, fold_history, valid_pred, holdout_pred = future.result()
                        fitted_folds[i], fitted_rounds = fitted, fitted.rounds
                        oof[splits[i][1]] = valid_pred
                        seen[splits[i][1]] = True
                        if holdout_pred is not None:
                            holdout = holdout_pred / k if holdout is None else holdout + holdout_pred / k
                        history.extend({"fold": i, **h} for h in fold_history)
                        if fitted_rounds:
                            rounds.append(fitted_rounds)
                        trial.report(metric.score(y[seen], oof[seen]), step)
                        step += 1
                        if not opening and trial.should_prune():
                            raise optuna.TrialPruned()
                    if pending and done and time.monotonic() > hard_end:
                        raise optuna.TrialPruned("out of time")  # leave the rest to the refit
            except BaseException:
                folds.cancel(pending)
                raise
        score = metric.score(y[validated], oof[validated])
        trial.set_user_attr("rounds", int(np.mean(rounds)) if rounds else None)
        trial.set_user_attr("seconds", round(time.monotonic() - started, 2))
        if history:
            trial.set_user_attr("history", history)
        np.save(oof_dir / f"{trial.number}.npy", oof)
        if holdout is not None:
            np.save(oof_dir / f"{trial.number}.holdout.npy", holdout)
            if may_join(score, name, finished(), maximize):
                save_folds(trainer, fitted_folds, folds_dir(oof_dir, trial.number))
        on_trial(trial, name, params, score, time.monotonic() - started)
        return score

    next_trial()

    def completed() -> int:
        return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))

    def enough(study, _trial) -> None:
        if completed() >= max_trials:
            study.stop()

    if completed() < max_trials:  # a resumed study that already has its trials only re-ensembles
        import sys

        study.optimize(objective, timeout=max(1.0, pace.end - pace.after_search - time.monotonic()),
                       catch=(), callbacks=[enough, next_trial], show_progress_bar=progress and sys.stderr.isatty())
    return candidates(study, oof_dir, with_holdout=X_holdout is not None)


def likely_ensemble(found: list[Candidate], y, metric, mask, rows: int = LIKELY_ROWS,
                    steps: int = LIKELY_STEPS) -> set[int]:
    """The trial numbers greedy selection (:func:`~gristmill.training.ensemble.greedy_weights`)
    chooses from ``found`` (best first) in ``steps`` steps on an even spread of at most ``rows`` of
    the ``mask`` rows."""
    import numpy as np

    from gristmill.training.ensemble import greedy_weights

    y, index = np.asarray(y), np.flatnonzero(mask)
    spread = index[np.linspace(0, len(index) - 1, rows).astype(int)] if len(index) > rows else index
    if len(np.unique(y[spread])) == len(np.unique(y[index])):  # every class still there
        index = spread
    return set(greedy_weights([replace(c, oof=c.oof[index]) for c in found], y[index], metric, steps=steps))


def refit_reserve(done: list, maximize: bool, ensemble: bool, workers: int, k: int,
                  members: set[int] | None = None) -> float:
    """Seconds the refit of the likely ensemble takes: its members' refits (a fold's fit, scaled)
    laid out longest first on the ``workers`` parallel lanes.

    The members counted are ``members`` (the trial numbers greedy selection chooses now,
    :func:`likely_ensemble`) when given; else those the ensemble chooses among
    (:func:`gristmill.training.ensemble.pool_of`): the best :data:`REFIT_MEMBERS` trials and the
    best trial of every other family, since greedy selection readily adds a different family's
    member (a catboost or mlp behind a run of cheap linear_spline trials; counting only the best
    trials, wa_churn at 60 s overran to 70 s before members could be bagged). Counting the whole
    pool kept 8-12 s of a 60 s budget unused (leaf_id_flavia: 12 s kept, a 2.6 s refit); a member
    the final ensemble adds beyond the estimate is served as its fold models when its refit does
    not fit (:func:`plan_bags`)."""
    best = sorted(done, key=lambda t: t.value, reverse=maximize)
    chosen = [t for t in best if t.number in (members or ())]
    if not ensemble:
        counted = best[:1]
    elif chosen:
        counted = chosen
    else:
        counted = best[:REFIT_MEMBERS]
        families = {t.params.get("trainer") for t in counted}
        for t in best[REFIT_MEMBERS:]:
            if t.params.get("trainer") not in families:
                counted.append(t)
                families.add(t.params.get("trainer"))
    lanes = [0.0] * workers
    for fit in sorted((REFIT_FACTOR * t.user_attrs["seconds"] * workers / k for t in counted), reverse=True):
        lanes[lanes.index(min(lanes))] += fit
    return max(lanes)


class _Folds:
    """The K fits of one trial, each stoppable: by a pruned trial, the deadline or its time share."""

    def __init__(self, trainer, params, task, X, y, weight, splits, X_holdout, hard_end: float,
                 fit_share: float) -> None:
        self.trainer, self.params, self.task = trainer, params, task
        self.data = trainer.inputs(X)
        self.holdout = None if X_holdout is None else trainer.inputs(X_holdout)
        self.y, self.weight, self.splits = y, weight, splits
        self.hard_end, self.fit_share = hard_end, fit_share
        self.cancelled = threading.Event()

    def fit(self, i: int):
        tr, va = self.splits[i]
        started = time.monotonic()
        limit = min(self.hard_end, started + self.fit_share)
        task = replace(self.task, stop=lambda: self.cancelled.is_set() or time.monotonic() > limit)
        w = None if self.weight is None else self.weight[tr]
        valid = (self.data.iloc[va], self.y[va]) if self.trainer.early_stopping else (None, None)
        fitted = self.trainer.fit(self.params, task, self.data.iloc[tr], self.y[tr], w, *valid)
        valid_pred = self.trainer.predict(fitted, task, self.data.iloc[va])
        holdout_pred = None if self.holdout is None else self.trainer.predict(fitted, task, self.holdout)
        return i, fitted, fitted.extra.pop("history", []), valid_pred, holdout_pred

    def cancel(self, pending) -> None:
        self.cancelled.set()
        for future in pending:
            future.cancel()


def candidates(study, oof_dir: Path, with_holdout: bool = False) -> list[Candidate]:
    """Finished trials whose out-of-fold predictions (and holdout predictions, when asked) are on
    disk, best first."""
    import numpy as np
    import optuna

    out = []
    for t in study.trials:
        path, holdout = oof_dir / f"{t.number}.npy", oof_dir / f"{t.number}.holdout.npy"
        if t.state != optuna.trial.TrialState.COMPLETE or not path.is_file():
            continue
        if with_holdout and not holdout.is_file():
            continue
        name = t.params["trainer"]
        params = {k.split(".", 1)[1]: v for k, v in t.params.items() if k.startswith(f"{name}.")}
        out.append(Candidate(t.number, name, params, t.value, t.user_attrs.get("rounds"),
                             t.user_attrs.get("seconds", 0.0), np.load(path),
                             np.load(holdout) if with_holdout else None))
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(out, key=lambda c: c.score, reverse=reverse)


def may_join(score: float, trainer: str, done: list, maximize: bool) -> bool:
    """Whether a trial scoring ``score`` may still end up in the ensemble, so its fold models are
    worth keeping: among the :data:`~gristmill.training.ensemble.POOL` best so far, or the best of
    its family (the ensemble's pool takes both)."""
    from gristmill.training.ensemble import POOL

    def better(t) -> bool:
        return t.value > score if maximize else t.value < score

    ahead = [t for t in done if better(t)]
    return len(ahead) < POOL or not any(t.params.get("trainer") == trainer for t in ahead)


def folds_dir(oof_dir: Path, number: int) -> Path:
    return oof_dir / f"{number}.folds"


def save_folds(trainer, fitted: list, folder: Path) -> bool:
    """Write a trial's fold models (one subfolder each, and ``index.json`` last, so a folder without
    it is incomplete); False, logged, when the trainer cannot save one (the member is then refitted)."""
    import json
    import logging
    import shutil

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        files = []
        for i, one in enumerate(fitted):
            sub = partial / str(i)
            sub.mkdir(parents=True)
            files.append(f"{i}/{trainer.save(one, sub)}")
        (partial / "index.json").write_text(json.dumps({"trainer": trainer.name, "files": files}))
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        return True
    except Exception as exc:  # a full disk, a trainer that cannot save: no bag for this trial
        logging.getLogger(__name__).warning("fold models of %s not kept (%s): it can only be refitted",
                                            folder.name, exc)
        shutil.rmtree(partial, ignore_errors=True)
        return False


def load_folds(oof_dir: Path, number: int) -> list | None:
    """A trial's fold models as its trainer's ``Fitted``, or None when they were not kept."""
    import json

    folder = folds_dir(oof_dir, number)
    index = folder / "index.json"
    if not index.is_file():
        return None
    meta = json.loads(index.read_text())
    trainer = trainers.get(meta["trainer"])
    return [trainer.load(folder / f) for f in meta["files"]]


def remove_folds(oof_dir: Path) -> None:
    """Delete every trial's kept fold models (after the registered model was built from them)."""
    import shutil

    for folder in oof_dir.glob("*.folds*"):
        shutil.rmtree(folder, ignore_errors=True)


def has_folds(oof_dir: Path, number: int) -> bool:
    return (folds_dir(oof_dir, number) / "index.json").is_file()


def plan_bags(refits: dict[int, float], lanes: int, time_left: float, bag_all: bool,
              baggable: set[int]) -> set[int]:
    """The members (trial numbers) to serve as their fold models instead of refitting them.

    ``refits`` holds each member's estimated refit seconds; they run longest first on ``lanes``
    parallel lanes. Every baggable member with ``bag_all``; otherwise the longest baggable refits
    are bagged until the rest end within ``time_left``, each only if that ends them sooner."""
    if bag_all:
        return set(baggable) & set(refits)
    bagged: set[int] = set()

    def makespan(numbers) -> float:
        slots = [0.0] * max(1, lanes)
        for seconds in sorted((refits[n] for n in numbers), reverse=True):
            slots[slots.index(min(slots))] += seconds
        return max(slots)

    for number in sorted(refits, key=refits.get, reverse=True):
        rest = [n for n in refits if n not in bagged]
        if makespan(rest) <= time_left:
            break
        # bagged only if that shortens the refits (a refit that cannot be bagged may set the pace)
        if number in baggable and makespan([n for n in rest if n != number]) < makespan(rest):
            bagged.add(number)
    return bagged
