"""A small grammar of numbers and units in requirement sentences.

- horizons: "in the next 30 days", "within 2 weeks", "next month", "90d", "over the next quarter";
- metric targets: "AUC > 0.85", "RMSE < 3", "accuracy of at least 90%", "R2 >= 0.7", "MAE below 2.5";
- volumes: "100k requests/day", "1.5M predictions per day", "50 req/s", "200 rps".

Each parser returns what it found with the matched text, so a choice can quote its evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNIT_DAYS = {"day": 1, "days": 1, "d": 1, "week": 7, "weeks": 7, "wk": 7, "w": 7, "month": 30, "months": 30,
             "mo": 30, "quarter": 91, "quarters": 91, "year": 365, "years": 365, "yr": 365, "y": 365}
WORD_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fourteen": 14, "thirty": 30, "sixty": 60,
                "ninety": 90}
#: metric names as people write them -> the spec's names
METRIC_ALIASES = {
    "roc auc": "roc_auc", "roc_auc": "roc_auc", "auroc": "roc_auc", "auc": "roc_auc", "roc-auc": "roc_auc",
    "pr auc": "average_precision", "pr-auc": "average_precision", "average precision": "average_precision",
    "average_precision": "average_precision", "ap": "average_precision", "auprc": "average_precision",
    "log loss": "log_loss", "logloss": "log_loss", "log_loss": "log_loss", "cross entropy": "log_loss",
    "accuracy": "accuracy", "acc": "accuracy", "f1": "f1", "f1 score": "f1", "f1-score": "f1",
    "rmse": "rmse", "root mean squared error": "rmse", "mae": "mae", "mean absolute error": "mae",
    "mape": "mape", "r2": "r2", "r²": "r2", "r^2": "r2", "r squared": "r2", "r-squared": "r2",
}
GREATER_IS_BETTER = {"roc_auc", "average_precision", "accuracy", "f1", "r2"}
BOUNDED = {"roc_auc", "average_precision", "accuracy", "f1", "r2", "mape"}  # "90%" means 0.9
AT_LEAST = (">=", "≥", "=>", "at least", "no less than", "min", "minimum")
ABOVE = (">", "above", "over", "more than", "greater than", "higher than", "exceeding", "better than")
AT_MOST = ("<=", "≤", "=<", "at most", "no more than", "max", "maximum")
BELOW = ("<", "below", "under", "less than", "lower than")
EQUAL = ("=", "==", "of", "is", "around", "about", "~", ":")
SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9}
PER_SECONDS = {"s": 1, "sec": 1, "second": 1, "minute": 60, "min": 60, "hour": 3600, "h": 3600, "hr": 3600,
               "day": 86400, "d": 86400, "week": 604800, "month": 2_592_000}


@dataclass(frozen=True)
class Horizon:
    days: int
    text: str


@dataclass(frozen=True)
class MetricTarget:
    """``metric`` must be at least (``bound`` 'min') or at most ('max') ``value``."""

    metric: str
    bound: str
    value: float
    text: str


@dataclass(frozen=True)
class Volume:
    per_second: float
    per_day: float
    text: str


_NUMBER = r"(\d+(?:[.,]\d+)?|" + "|".join(WORD_NUMBERS) + r")"
_UNIT = r"(" + "|".join(sorted(UNIT_DAYS, key=len, reverse=True)) + r")\b"
_HORIZON = re.compile(r"\b(?:(?:in|within|over|during|for)\s+)?(?:the\s+)?(?:next|coming|following)?\s*"
                      + _NUMBER + r"[\s-]*" + _UNIT, re.I)
_NEXT_UNIT = re.compile(r"\b(?:next|coming|following)\s+(day|week|month|quarter|year)\b", re.I)


def _number(text: str) -> float:
    text = text.lower()
    return float(WORD_NUMBERS[text]) if text in WORD_NUMBERS else float(text.replace(",", "."))


def parse_horizon(text: str) -> Horizon | None:
    """The prediction horizon a sentence names, in days, or None."""
    for match in _HORIZON.finditer(text or ""):
        number, unit = match.group(1), match.group(2).lower()
        if unit in ("d", "w", "y", "mo") and not re.search(r"\d\s*" + unit + r"\b", match.group(0), re.I):
            continue  # single letters only right after digits ("30d"), not "a d..."
        if number.lower() in ("a", "an") and not re.search(r"\b(next|within|in|over)\b", match.group(0), re.I):
            continue
        days = round(_number(number) * UNIT_DAYS[unit])
        if days >= 1:
            return Horizon(days, match.group(0).strip())
    match = _NEXT_UNIT.search(text or "")
    if match:
        return Horizon(UNIT_DAYS[match.group(1).lower()], match.group(0))
    return None


def _alternatives(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_METRIC = re.compile(r"(?<![\w])(" + _alternatives(METRIC_ALIASES) + r")(?![\w])\s*(?:score\s*)?(?:should be\s*|must be\s*"
                     r"|needs to be\s*|of\s+)?\s*(" + _alternatives(AT_LEAST + ABOVE + AT_MOST + BELOW + EQUAL)
                     + r")?\s*(?:of\s+)?(-?\d+(?:[.,]\d+)?)\s*(%?)", re.I)


def parse_metric_targets(text: str) -> list[MetricTarget]:
    """Every metric target a sentence states ("AUC > 0.85", "RMSE below 3", "accuracy of 90%")."""
    found = []
    for match in _METRIC.finditer(text or ""):
        metric = METRIC_ALIASES[match.group(1).lower()]
        op = (match.group(2) or "").lower().strip()
        value = float(match.group(3).replace(",", "."))
        if match.group(4) == "%" or (metric in BOUNDED and value > 1 and metric != "mape"):
            value /= 100.0
        if op in AT_LEAST or op in ABOVE:
            bound = "min"
        elif op in AT_MOST or op in BELOW:
            bound = "max"
        else:  # "AUC of 0.85": the direction the metric improves in
            bound = "min" if metric in GREATER_IS_BETTER else "max"
        found.append(MetricTarget(metric, bound, value, match.group(0).strip()))
    return found


_VOLUME = re.compile(r"(\d+(?:[.,]\d+)?)\s*(k|m|mm|b|thousand|million|billion)?\s*(?:requests?|req|predictions?|"
                     r"calls?|queries|scores?|hits)?\s*(?:/|per|an?|each|every)\s*"
                     r"(s|sec|second|min|minute|h|hr|hour|d|day|week|month)\b", re.I)
_RPS = re.compile(r"(\d+(?:[.,]\d+)?)\s*(k|m)?\s*(rps|qps)\b", re.I)


def parse_volume(text: str) -> Volume | None:
    """The request volume a sentence names, or None."""
    match = _VOLUME.search(text or "")
    if match:
        n = float(match.group(1).replace(",", ".")) * SCALE.get((match.group(2) or "").lower(), 1)
        per = PER_SECONDS[match.group(3).lower()]
        return Volume(n / per, n * 86400 / per, match.group(0).strip())
    match = _RPS.search(text or "")
    if match:
        n = float(match.group(1).replace(",", ".")) * SCALE.get((match.group(2) or "").lower(), 1)
        return Volume(n, n * 86400, match.group(0).strip())
    return None


def serving_workers(volume: Volume | None, per_worker: float, peak_factor: float = 10.0, cores: int | None = None
                    ) -> int:
    """Service workers for a volume: the peak (``peak_factor`` times the mean rate) over what one
    worker answers, at least 1, at most the machine's cores."""
    import math
    import os

    if volume is None:
        return 1
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, math.ceil(volume.per_second * peak_factor / per_worker)))
