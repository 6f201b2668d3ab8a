"""Greedy ensemble selection over out-of-fold predictions (Caruana et al., 2004).

Start from nothing; at each step add, with replacement, the candidate whose inclusion makes the
average of the chosen predictions score best on the out-of-fold rows; stop after :data:`STEPS`
steps. The weights are how often each candidate was chosen. The same recipe powers AutoGluon's
weighted ensemble; it never does worse on the out-of-fold rows than the best single candidate,
which is where it starts.
"""

from __future__ import annotations

STEPS = 25
POOL = 12  # the best candidates considered, plus the best of every other family


def pool_of(candidates: list) -> list:
    """The candidates greedy selection chooses from: the best :data:`POOL`, then the best trial of
    each family not among them (best first). A cheap family that the search sampled over and over
    would otherwise fill the whole pool with near-copies of itself and leave the ensemble nothing
    different to add (seen on credit_data at 60 s: 12 of 12 were linear_spline trials)."""
    pool = list(candidates[:POOL])
    families = {c.trainer for c in pool}
    for c in candidates[POOL:]:
        if c.trainer not in families:
            pool.append(c)
            families.add(c.trainer)
    return pool


def greedy_weights(candidates: list, y, metric, mask=None, steps: int = STEPS) -> dict[int, float]:
    """Trial number -> weight (summing to 1) chosen on ``candidates``' out-of-fold predictions.

    ``candidates`` come best first (the pool is :func:`pool_of` them); ``mask`` selects the rows that have out-of-fold predictions.
    The ensemble kept is the best of the ``steps`` (:data:`STEPS`) prefixes, so it is never worse on those rows
    than the best single candidate (the first prefix)."""
    import numpy as np

    pool = pool_of(candidates)
    y = np.asarray(y)
    if mask is None:
        mask = np.ones(len(y), dtype=bool)
    sign = 1.0 if metric.greater_is_better else -1.0
    total, chosen, best = None, {}, None
    for count in range(1, steps + 1):
        score, pick = max(((sign * metric.score(y[mask], ((c.oof if total is None else total + c.oof)
                                                          / count)[mask]), i)
                           for i, c in enumerate(pool)), key=lambda s: s[0])
        cand = pool[pick]
        total = cand.oof.copy() if total is None else total + cand.oof
        chosen[cand.number] = chosen.get(cand.number, 0) + 1
        if best is None or score > best[0] + 1e-12:
            best = (score, dict(chosen), count)
    _, counts, steps = best
    return {number: n / steps for number, n in counts.items()}
