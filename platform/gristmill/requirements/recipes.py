"""Label recipes: a label table built from an events table when the export holds none.

Every recipe works on a grid of as-of dates ``t`` (every ``every`` days, from the first event
plus one step, up to the last event minus the horizon, so each label's window has fully passed)
and is point-in-time correct: *who* gets a label at ``t`` is decided only from events at or before
``t``; *what* the label is comes from the window ``(t, t + horizon]`` and nothing later. The
features of a row (Feast's point-in-time join) see only events at or before ``t``.

- ``inactivity`` (churn): entities active at ``t`` (an event in the ``horizon`` days up to it) and
  not cancelled yet; label True when there is no activity in the window, or a cancellation in it;
- ``event_within`` (conversion): entities seen by ``t`` with no outcome event yet; label True when
  an outcome event happens in the window;
- ``sum_within`` (value, demand): entities seen by ``t``; label the sum of ``amount`` in the window
  (0 when none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gristmill.errors import DataError
from gristmill.sql import ident, literal, qualified

AS_OF = "as_of"


@dataclass(frozen=True)
class LabelPlan:
    """Which events make the label, and how (the understanding's choices)."""

    recipe: str
    table: str
    key: str
    timestamp: str
    target: str
    horizon_days: int
    every_days: int
    amount: str | None = None          #: sum_within: the column summed
    outcome: str | None = None         #: event_within / inactivity: the column naming the event type
    outcome_words: tuple[str, ...] = ()

    def how(self) -> str:
        window = f"the {self.horizon_days} days after each as-of date"
        if self.recipe == "inactivity":
            cancel = (f", or an event whose {self.outcome} contains {'/'.join(self.outcome_words)}"
                      if self.outcome else "")
            return (f"{self.target} = no event in {self.table} in {window}{cancel}; each {self.key} "
                    f"labelled while active (an event in the {self.horizon_days} days up to the as-of "
                    f"date); as-of dates every {self.every_days} days whose window has passed")
        if self.recipe == "event_within":
            return (f"{self.target} = an event in {self.table} whose {self.outcome} contains "
                    f"{'/'.join(self.outcome_words)} in {window}; each {self.key} labelled from its first "
                    f"event until that happens; as-of dates every {self.every_days} days")
        return (f"{self.target} = the sum of {self.table}.{self.amount} per {self.key} in {window} (0 "
                f"when none); as-of dates every {self.every_days} days whose window has passed")


def _matches(column: str | None, words: tuple[str, ...]) -> str:
    if not column or not words:
        return "FALSE"
    text = f"lower(CAST({ident(column)} AS VARCHAR))"
    return "(" + " OR ".join(f"contains({text}, {literal(w.lower())})" for w in words) + ")"


def label_sql(project: str, plan: LabelPlan) -> str:
    """The query building ``plan``'s label rows: key, ``as_of``, target."""
    src = qualified(project, plan.table)
    h, step = int(plan.horizon_days), int(plan.every_days)
    hit = _matches(plan.outcome, plan.outcome_words)
    amount = f", CAST({ident(plan.amount)} AS DOUBLE) AS amount" if plan.amount else ""
    events = (f"ev AS (SELECT CAST({ident(plan.key)} AS VARCHAR) AS k, CAST({ident(plan.timestamp)} AS TIMESTAMP) "
              f"AS t, {hit} AS hit{amount} FROM {src} WHERE {ident(plan.key)} IS NOT NULL AND "
              f"{ident(plan.timestamp)} IS NOT NULL)")
    grid = (f"bounds AS (SELECT date_trunc('day', min(t)) AS lo, max(t) AS hi FROM ev), "
            f"grid AS (SELECT unnest(generate_series(lo + INTERVAL {step} DAY, hi - INTERVAL {h} DAY, "
            f"INTERVAL {step} DAY)) AS as_of FROM bounds)")
    window = f"e.t > g.as_of AND e.t <= g.as_of + INTERVAL {h} DAY"
    target = ident(plan.target)
    if plan.recipe == "inactivity":
        return (f"WITH {events}, {grid}, "
                f"active AS (SELECT DISTINCT e.k, g.as_of FROM grid g JOIN ev e "
                f"ON e.t > g.as_of - INTERVAL {h} DAY AND e.t <= g.as_of AND NOT e.hit) "
                f"SELECT a.k AS {ident(plan.key)}, a.as_of AS {AS_OF}, "
                f"(NOT EXISTS (SELECT 1 FROM ev e, (SELECT a.as_of) g WHERE e.k = a.k AND {window} AND NOT e.hit) "
                f"OR EXISTS (SELECT 1 FROM ev e, (SELECT a.as_of) g WHERE e.k = a.k AND {window} AND e.hit)) "
                f"AS {target} FROM active a "
                f"WHERE NOT EXISTS (SELECT 1 FROM ev e WHERE e.k = a.k AND e.hit AND e.t <= a.as_of) "
                f"ORDER BY 2, 1")
    if plan.recipe == "event_within":
        return (f"WITH {events}, {grid}, "
                f"seen AS (SELECT e.k, min(e.t) AS first, min(e.t) FILTER (WHERE e.hit) AS won FROM ev e GROUP BY 1) "
                f"SELECT s.k AS {ident(plan.key)}, g.as_of AS {AS_OF}, "
                f"coalesce(s.won <= g.as_of + INTERVAL {h} DAY, FALSE) AS {target} "
                f"FROM seen s JOIN grid g ON s.first <= g.as_of AND (s.won IS NULL OR s.won > g.as_of) "
                f"ORDER BY 2, 1")
    if plan.recipe == "sum_within":
        if not plan.amount:
            raise DataError("the sum_within label recipe needs an amount column")
        return (f"WITH {events}, {grid}, "
                f"seen AS (SELECT k, min(t) AS first FROM ev GROUP BY 1) "
                f"SELECT s.k AS {ident(plan.key)}, g.as_of AS {AS_OF}, "
                f"coalesce((SELECT sum(e.amount) FROM ev e WHERE e.k = s.k AND {window}), 0.0) AS {target} "
                f"FROM seen s JOIN grid g ON s.first <= g.as_of ORDER BY 2, 1")
    raise DataError(f"no label recipe {plan.recipe!r} builds labels from events")


def build_labels(ws, project: str, plan: LabelPlan):
    """The label rows of ``plan`` as a pandas frame (key, ``as_of``, target)."""
    from gristmill.catalog import lake_reader

    con = lake_reader(ws, project)
    try:
        frame = con.execute(label_sql(project, plan)).df()
    finally:
        con.close()
    if frame.empty:
        raise DataError(f"the {plan.recipe} recipe made no label rows from {plan.table!r}: its events span "
                        f"less than {plan.every_days + plan.horizon_days} days (one step plus the horizon)")
    return frame


def write_labels(ws, project: str, name: str, frame) -> Path:
    """Write built labels where the spec's sources can name them (0600, microsecond timestamps)."""
    import os

    folder = ws.project_dir(project) / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    frame.to_parquet(path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True)
    os.chmod(path, 0o600)
    return path
