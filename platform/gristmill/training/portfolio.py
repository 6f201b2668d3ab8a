"""The portfolio: a fixed, ordered list of strong configurations across model families, tried
before the search tunes anything.

The list is plain data (``trainers/portfolio.json``), learned offline by ``bench/portfolio.py`` on
benchmark tables that are never the one being trained (and none of the ``bench/automl`` sets the
product is measured on). A search runs it in two parts:

1. **The opening**: the portfolio's first configuration of every family the training may use
   (its ``defaults`` for a family the portfolio lacks, and for every family on a table much larger
   than the portfolio's, :func:`plan`), cheapest families first (:data:`COST`), so
   a short budget still ends with a member of each family. Opening trials are never pruned by the
   median rule: a weak family's member can still help the ensemble.
2. **The rest of the portfolio**, in its learned order, until it runs out or
   :data:`PORTFOLIO_SHARE` of the search has passed; then **refinement**: the sampler (TPE) tunes
   the families that lead, the best family most often (:data:`REFINE_PATTERN`).

Each next trial is enqueued into the Optuna study when the previous one ends (never more than one
waiting), so several processes sharing one study (``--workers``) walk one portfolio: an entry two
processes both enqueued runs once (:func:`is_duplicate`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Callable

from gristmill.training import trainers

#: Rough cost order of the families' opening trials (fast first), so a short budget gets the most.
#: LightGBM leads (the first trial always finishes, and it is the likeliest winner); knn and
#: linear_spline cost under 1.5 s a fold on ames and hpc_data (one thread, load 4), so they go
#: before the boosted trees; mlp (5-6 s there, stopped at its time share on large tables) after
#: the forests.
COST = {"lightgbm": 0, "linear": 1, "knn": 2, "linear_spline": 3, "xgboost": 4, "catboost": 5, "extra_trees": 6,
        "random_forest": 7, "mlp": 8, "ft_transformer": 9, "text_finetune": 10}
#: Families that grow one tree per class each boosting round: on a task of more than
#: :data:`MANY_CLASSES` classes they open after every family whose cost does not grow with the
#: classes (leaf_id_flavia, 32 classes in 1,527 rows at 60 s: a 32-class LightGBM opening took the
#: whole search as its one trial, and k-NN, linear and the forests never ran).
PER_CLASS = frozenset({"lightgbm", "xgboost", "catboost"})
MANY_CLASSES = 10
#: The share of the search the portfolio may take before refinement starts (the opening always runs).
PORTFOLIO_SHARE = 0.75
#: Which of the leading families (0 = the best so far) each refinement trial tunes, in turn.
REFINE_PATTERN = (0, 1, 0, 2, 0, 1)
LEADERS = 3
#: Past this many times the rows of the portfolio's largest table, the families' defaults open.
SIZE_FACTOR = 3
FILE = Path(trainers.__file__).with_name("portfolio.json")


def entries(path: Path | None = None) -> tuple[tuple[str, dict], ...]:
    """The learned portfolio (:data:`FILE` unless ``path``): (trainer, params) pairs in order."""
    return _read(path or FILE)[0]


def learned_rows(path: Path | None = None) -> int | None:
    """The most rows of any table the portfolio was learned on (None: not recorded)."""
    return _read(path or FILE)[1]


@lru_cache(maxsize=4)
def _read(path: Path) -> tuple[tuple[tuple[str, dict], ...], int | None]:
    data = json.loads(path.read_text())
    return tuple((e["trainer"], dict(e["params"])) for e in data["entries"]), data.get("max_rows")


def opening_cost(name: str, classes: int = 0) -> tuple:
    """Where family ``name`` stands in the opening of a task with ``classes`` classes (its
    ``Task.n_classes``: 2 for binary, 0 for regression): :data:`COST`, with the :data:`PER_CLASS`
    families last past :data:`MANY_CLASSES`."""
    return (classes > MANY_CLASSES and name in PER_CLASS, COST.get(name, len(COST)), name)


def plan(names: list[str], path: Path | None = None, rows: int | None = None,
         classes: int = 0) -> tuple[list[tuple[str, dict]], int]:
    """The ordered trials for a training with trainers ``names`` on ``rows`` rows of a task with
    ``classes`` classes (:func:`opening_cost`): the opening (one per family, :func:`opening_cost`
    order) then the rest of the portfolio; and the opening's length.

    On a table of more than :data:`SIZE_FACTOR` times the rows the portfolio was learned on, every
    family opens with its own ``defaults`` instead (chosen by hand on large tables too), and the
    portfolio follows whole: configurations learned on small tables lack capacity on large ones
    (flights, 48k rows, at 60 s: LightGBM with 8 leaves, the portfolio's first, 0.722 CV AUC)."""
    chosen = [(name, params) for name, params in entries(path) if name in names]
    cap = learned_rows(path)
    large = rows is not None and cap is not None and rows > SIZE_FACTOR * cap
    first: dict[str, dict] = {}
    for name in names:
        if large:
            first[name] = dict(trainers.get(name).defaults)
    for name, params in chosen:
        first.setdefault(name, params)
    for name in names:
        first.setdefault(name, dict(trainers.get(name).defaults))
    opening = [(name, first[name]) for name in sorted(first, key=lambda n: opening_cost(n, classes))]
    rest, skipped = [], set()
    for name, params in chosen:
        if name not in skipped and params == first[name]:
            skipped.add(name)  # already in the opening
            continue
        rest.append((name, params))
    return opening + rest, len(opening)


def enqueue_next(study, names: list[str], portfolio_over: Callable[[], bool], maximize: bool,
                 rows: int | None = None, fits: Callable[[str], bool] | None = None, classes: int = 0) -> None:
    """Queue the study's next trial, unless one already waits: the next portfolio entry (the
    opening whatever the time; the rest until ``portfolio_over()``), else a refinement trial of a
    leading family whose parameters the sampler chooses. With ``fits`` (whether a trial of a
    family would still end in time), entries that would not are passed over for later, cheaper
    ones, so the end of a short budget goes to what can still finish."""
    fits = fits or (lambda _name: True)
    import optuna

    State = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    if any(t.state == State.WAITING for t in trials):
        return
    order, opening = plan(names, rows=rows, classes=classes)
    used = [t.user_attrs["portfolio"] for t in trials if "portfolio" in t.user_attrs]
    position = max(used) + 1 if used else 0
    while position < len(order) and (position < opening or not portfolio_over()):
        name, params = order[position]
        if fits(name):
            study.enqueue_trial({"trainer": name, **{f"{name}.{k}": v for k, v in params.items()}},
                                user_attrs={"portfolio": position, "opening": position < opening})
            return
        position += 1  # would not end in time: a later entry may
    done = [t for t in trials if t.state == State.COMPLETE and t.params.get("trainer") in names]
    lead = [name for name in leaders(done, maximize) if fits(name)]
    if not lead:
        return  # nothing finished yet, or nothing that fits: the sampler picks (and the search ends)
    turn = sum(1 for t in trials if t.user_attrs.get("refine"))
    family = lead[REFINE_PATTERN[turn % len(REFINE_PATTERN)] % len(lead)]
    study.enqueue_trial({"trainer": family}, user_attrs={"refine": True})


def leaders(done: list, maximize: bool, k: int = LEADERS) -> list[str]:
    """The ``k`` families with the best finished trials, best first."""
    best: dict[str, float] = {}
    for t in done:
        name = t.params.get("trainer")
        if name not in best or (t.value > best[name] if maximize else t.value < best[name]):
            best[name] = t.value
    return sorted(best, key=best.get, reverse=maximize)[:k]


def is_duplicate(trial) -> bool:
    """Whether another, earlier trial of the study already ran this portfolio entry (two processes
    enqueued it at the same moment)."""
    position = trial.user_attrs.get("portfolio")
    if position is None:
        return False
    import optuna

    return any(t.number < trial.number and t.user_attrs.get("portfolio") == position
               and t.state != optuna.trial.TrialState.FAIL for t in trial.study.get_trials(deepcopy=False))
