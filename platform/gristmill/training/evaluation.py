"""The evaluation report of a training: what the holdout says about the model, with error bars.

One report per training (JSON + HTML, written under ``<workspace>/reports/<project>/evaluation/``
and logged as artifacts of the MLflow training run):

- every metric of the task on the holdout, with a bootstrap confidence interval (``RESAMPLES``
  resamples of the holdout rows, seeded, the 2.5th and 97.5th percentiles);
- the selection metric per slice of the gate's ``slices`` (rows, score, interval);
- the comparison with the champion: its score on the same holdout and, when it was rescored on the
  rows, the paired bootstrap interval of the difference (new minus champion);
- the gate: every check, passed, failed or skipped, and why.

The point estimates are the training's own metrics; the intervals are computed with numpy only
(a few hundred resamples take milliseconds). The report reads the training's results and never
changes them.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

RESAMPLES = 200
LEVEL = 0.95


# --- metrics in numpy, for the resamples ---------------------------------------------------------

def _labels(p):
    return p.argmax(axis=1) if p.ndim == 2 else (p >= 0.5).astype(int)


def _roc_auc(y, p):
    import numpy as np

    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return np.nan
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]       # average ranks of ties, from 1
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _average_precision(y, p):
    import numpy as np

    total = int((y == 1).sum())
    if total == 0:
        return np.nan
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], (y[order] == 1).astype(float)
    last = np.r_[np.nonzero(np.diff(ps))[0], len(ps) - 1]      # the last row of each distinct score
    tp = np.cumsum(ys)[last]
    precision, recall = tp / (last + 1), tp / total
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _log_loss(y, p):
    import numpy as np

    eps = np.finfo(float).eps
    if p.ndim == 2:
        p = p / p.sum(axis=1, keepdims=True)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y.astype(int)], eps, 1))))
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(np.where(y == 1, np.log(p), np.log(1 - p))))


def _f1(y, p):
    import numpy as np

    guess = _labels(p)
    classes = range(p.shape[1]) if p.ndim == 2 else [1]
    scores = []
    for c in classes:
        tp = np.sum((guess == c) & (y == c))
        fp, fn = np.sum((guess == c) & (y != c)), np.sum((guess != c) & (y == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def _mape(y, p):
    import numpy as np

    return float((np.abs(y - p) / np.maximum(np.abs(y), np.finfo(float).eps)).mean())


def _r2(y, p):
    import numpy as np

    total = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - p) ** 2) / total) if total > 0 else np.nan


FAST = {
    "roc_auc": _roc_auc,
    "average_precision": _average_precision,
    "log_loss": _log_loss,
    "accuracy": lambda y, p: float((_labels(p) == y).mean()),
    "f1": _f1,
    "rmse": lambda y, p: float(((y - p) ** 2).mean() ** 0.5),
    "mae": lambda y, p: float(abs(y - p).mean()),
    "mape": _mape,
    "r2": _r2,
}


def _indices(n: int, resamples: int, seed: int):
    import numpy as np

    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(values) -> list[float] | None:
    import numpy as np

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 10:
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [round(float(low), 6), round(float(high), 6)]


def bootstrap(name: str, y, p, idx) -> list[float] | None:
    """The ``LEVEL`` interval of metric ``name`` over the resamples ``idx`` (rows x resamples)."""
    fn = FAST[name]
    return _interval([fn(y[i], p[i]) for i in idx])


# --- the report ---------------------------------------------------------------------------------

def evaluate(task: str, metric, y, scores, frame=None, gate_config=None, gate_result=None,
             champion_score: float | None = None, champion_scores=None, champion_note: str = "",
             champion_slices: dict | None = None, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """The report as a dict: ``metrics`` (every metric of ``task`` with its interval), ``slices``,
    ``champion`` and ``gate``. ``y`` are the encoded holdout labels, ``scores`` the model's
    predictions (probabilities for classifiers), ``frame`` the holdout rows (for slices)."""
    import numpy as np

    from gristmill.training.task import TASK_METRICS, get_metric

    y, p = np.asarray(y), np.asarray(scores, dtype=float)
    idx = _indices(len(y), resamples, seed)
    names = [metric.name] + sorted(TASK_METRICS[task] - {metric.name})
    if task == "multiclass":
        names = [n for n in names if n in FAST]
    metrics = {}
    for name in names:
        m = get_metric(name, task)
        try:
            value = m.score(y, p)
        except ValueError as exc:
            metrics[name] = {"value": None, "interval": None, "note": str(exc).splitlines()[0][:120]}
            continue
        metrics[name] = {"value": round(float(value), 6), "interval": bootstrap(name, y, p, idx),
                         "greater_is_better": m.greater_is_better}
    report = {"task": task, "metric": metric.name, "rows": int(len(y)), "resamples": resamples, "seed": seed,
              "level": LEVEL, "metrics": metrics, "slices": {}, "champion": None,
              "gate": gate_result.as_dict() if gate_result is not None else None}
    slices = list(getattr(gate_config, "slices", []) or [])
    if slices and frame is not None:
        report["slices"] = _slices(metric, y, p, frame, slices, getattr(gate_config, "min_slice_rows", 1),
                                   resamples, seed, champion_scores, champion_slices)
    if champion_score is not None:
        champ = {"score": round(float(champion_score), 6), "note": champion_note,
                 "difference": round(float(metrics[metric.name]["value"] - champion_score), 6)
                 if metrics[metric.name]["value"] is not None else None, "difference_interval": None}
        if champion_scores is not None and metric.name in FAST:
            c = np.asarray(champion_scores, dtype=float)
            fn = FAST[metric.name]
            champ["difference_interval"] = _interval([fn(y[i], p[i]) - fn(y[i], c[i]) for i in idx])
        report["champion"] = champ
    return report


def _slices(metric, y, p, frame, names, min_rows, resamples, seed, champion_scores, champion_slices) -> dict:
    import numpy as np

    from gristmill.training.gate import resolve_column

    out = {}
    c = None if champion_scores is None else np.asarray(champion_scores, dtype=float)
    frame = frame.reset_index(drop=True)
    for name in names:
        values = frame[resolve_column(name, list(frame.columns))].astype("string").fillna("(missing)").to_numpy()
        rows = {}
        for value in sorted(set(values)):
            inside = np.nonzero(values == value)[0]
            entry = {"rows": int(len(inside)), "value": None, "interval": None, "champion": None}
            if len(inside) >= min_rows:
                try:
                    entry["value"] = round(metric.score(y[inside], p[inside]), 6)
                except ValueError as exc:
                    entry["note"] = str(exc).splitlines()[0][:120]
                else:
                    if metric.name in FAST:
                        idx = _indices(len(inside), resamples, seed)
                        entry["interval"] = bootstrap(metric.name, y[inside], p[inside], idx)
                    if c is not None:
                        try:
                            entry["champion"] = round(metric.score(y[inside], c[inside]), 6)
                        except ValueError:
                            pass
                    elif champion_slices:
                        entry["champion"] = (champion_slices.get(name) or {}).get(str(value))
            else:
                entry["note"] = f"fewer than {min_rows} rows"
            rows[str(value)] = entry
        out[name] = rows
    return out


def _fmt(value, interval=None) -> str:
    if value is None:
        return "—"
    text = f"{value:.4f}"
    return text + (f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "")


def to_html(report: dict, title: str) -> str:
    """A self-contained HTML page of the report (every value escaped)."""
    e = html.escape
    level = f"{report['level']:.0%}"
    parts = [f"<!doctype html><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.failed{color:#b00}"
             ".passed{color:#070}.skipped{color:#888}</style>",
             f"<h1>{e(title)}</h1><p>{report['rows']} holdout rows; {e(report['task'])}; selection metric "
             f"<b>{e(report['metric'])}</b>; {level} intervals from {report['resamples']} bootstrap resamples "
             f"(seed {report['seed']}).</p>",
             f"<h2>Metrics</h2><table><tr><th>metric</th><th>holdout [{level} interval]</th></tr>"]
    for name, m in report["metrics"].items():
        parts.append(f"<tr><td>{e(name)}</td><td>{e(_fmt(m['value'], m.get('interval')))}</td></tr>")
    parts.append("</table>")
    for name, rows in report["slices"].items():
        parts.append(f"<h2>Slices by {e(name)}</h2><table><tr><th>{e(name)}</th><th>rows</th>"
                     f"<th>{e(report['metric'])} [{level}]</th><th>champion</th><th>note</th></tr>")
        for value, r in rows.items():
            parts.append(f"<tr><td>{e(value)}</td><td>{r['rows']}</td><td>{e(_fmt(r['value'], r['interval']))}"
                         f"</td><td>{e(_fmt(r['champion']))}</td><td>{e(r.get('note', ''))}</td></tr>")
        parts.append("</table>")
    champ = report["champion"]
    parts.append("<h2>Champion</h2>")
    if champ is None:
        parts.append("<p>No champion to compare with.</p>")
    else:
        parts.append(f"<p>Champion {e(report['metric'])} {e(_fmt(champ['score']))}; this model minus the "
                     f"champion {e(_fmt(champ['difference'], champ['difference_interval']))}. "
                     f"{e(champ['note'] or '')}</p>")
    gate = report["gate"]
    parts.append("<h2>Quality gate</h2>")
    if not gate or not gate["checks"]:
        parts.append("<p>No quality gate (<code>training.gate</code>) configured.</p>")
    else:
        parts.append(f"<p class='{e(gate['status'])}'>{e(gate['status'])}</p><table><tr><th>check</th>"
                     "<th>value</th><th>limit</th><th>result</th><th>detail</th></tr>")
        for c in gate["checks"]:
            state = {True: "passed", False: "failed", None: "skipped"}[c["passed"]]
            parts.append(f"<tr><td>{e(c['name'])}</td><td>{e(_fmt(c['value']))}</td><td>{e(_fmt(c['limit']))}"
                         f"</td><td class='{state}'>{state}</td><td>{e(c['detail'])}</td></tr>")
        parts.append("</table>")
    return "\n".join(parts) + "\n"


def write(report: dict, folder: Path, stem: str, title: str) -> dict[str, str]:
    """``<stem>.json`` and ``<stem>.html`` in ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / f"{stem}.json", folder / f"{stem}.html"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str))
    html_path.write_text(to_html(report, title))
    return {"json": str(json_path), "html": str(html_path)}
