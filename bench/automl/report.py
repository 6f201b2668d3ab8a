"""The results table: score per dataset, rank per dataset, mean rank, time used, per budget.

    .venv/bin/python bench/automl/report.py [--out bench/automl/results]

Reads ``<out>/budget_<B>/<dataset>__<system>.json`` (written by ``run.py``) and writes
``<out>/RESULTS.md`` and ``<out>/results.csv``. Ranks are per dataset (1 = best; ties share the
mean rank; a system that failed or timed out ranks last); the mean rank of a budget counts only the
datasets on which every system was run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEMS = ("gristmill", "flaml", "autogluon", "autogluon_best", "lightgbm")
LETTER = {"gristmill": "G", "flaml": "F", "autogluon": "A", "autogluon_best": "B", "lightgbm": "L"}
GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}
ARROW = {"roc_auc": "ROC AUC ↑", "log_loss": "log loss ↓", "rmse": "RMSE ↓"}


def rows(out: Path) -> list[dict]:
    found = []
    for path in sorted(out.glob("budget_*/*__*.json")):
        found.append(json.loads(path.read_text()))
    return found


def ranks(group: list[dict]) -> dict[str, float]:
    """System -> rank on one (budget, dataset); failures rank last, ties share the mean rank."""
    metric = group[0]["metric"]
    sign = -1.0 if GREATER_IS_BETTER[metric] else 1.0
    keyed = sorted(group, key=lambda r: (r["score"] is None, sign * (r["score"] or 0.0)))
    out, i = {}, 0
    while i < len(keyed):
        j = i
        while j + 1 < len(keyed) and keyed[j + 1]["score"] == keyed[i]["score"]:
            j += 1
        for r in keyed[i:j + 1]:
            out[r["system"]] = (i + j) / 2 + 1
        i = j + 1
    return out


def paired_bootstrap(data: Path, scratch: Path, budget: int, dataset: str, a: str, b: str,
                     resamples: int = 500, seed: int = 0):
    """90% interval of score(a) - score(b) over bootstrap resamples of the test rows, or None."""
    import numpy as np
    import pandas as pd

    sys_path = str(HERE)
    import sys

    if sys_path not in sys.path:
        sys.path.insert(0, sys_path)
    from run import score

    files = [scratch / str(budget) / dataset / s / "preds.parquet" for s in (a, b)]
    if not all(f.is_file() for f in files):
        return None
    meta = json.loads((data / dataset / "meta.json").read_text())
    target = pd.read_parquet(data / dataset / "test.parquet", columns=["target"])["target"]
    pa, pb = (pd.read_parquet(f) for f in files)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        idx = rng.integers(0, len(target), len(target))
        t = target.iloc[idx].reset_index(drop=True)
        if meta["task"] == "binary" and t.nunique() < 2:
            continue
        diffs.append(score(meta, t, pa.iloc[idx].reset_index(drop=True))
                     - score(meta, t, pb.iloc[idx].reset_index(drop=True)))
    low, high = np.percentile(diffs, [5, 95])
    return float(low), float(high)


def fmt(value, metric: str) -> str:
    if value is None:
        return "failed"
    if metric == "rmse":
        return f"{value:,.1f}" if value >= 100 else f"{value:.3f}"
    return f"{value:.4f}"


def table(all_rows: list[dict], budget: int, metas: dict) -> tuple[list[str], dict]:
    by_dataset: dict[str, list[dict]] = {}
    for r in all_rows:
        if r["budget"] == budget:
            by_dataset.setdefault(r["dataset"], []).append(r)
    SYSTEMS = [s for s in globals()["SYSTEMS"] if any(r["system"] == s for g in by_dataset.values() for r in g)]
    letters = "/".join(LETTER[s] for s in SYSTEMS)
    order = [d for d in metas if d in by_dataset] + sorted(set(by_dataset) - set(metas))
    head = (f"| dataset | task | metric | {' | '.join(SYSTEMS)} | ranks ({letters}) | time used s ({letters}) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    rank_sum = {s: 0.0 for s in SYSTEMS}
    complete, wins = 0, {s: 0 for s in SYSTEMS}
    current, current_sum = 0, {s: 0.0 for s in SYSTEMS}
    for dataset in order:
        group = by_dataset[dataset]
        got = {r["system"]: r for r in group}
        metric = group[0]["metric"]
        full = all(s in got for s in SYSTEMS)
        rk = ranks(group)
        if full:
            complete += 1
            for s in SYSTEMS:
                rank_sum[s] += rk[s]
            for s in SYSTEMS:
                wins[s] += rk[s] == 1.0
        best = min(rk.values())
        cells = []
        for s in SYSTEMS:
            if s not in got:
                cells.append("not run")
                continue
            text = fmt(got[s]["score"], metric)
            cells.append(f"**{text}**" if rk[s] == best and got[s]["score"] is not None else text)
        earlier = any("commit" not in r for r in group)
        if full and not earlier:
            current += 1
            for s in SYSTEMS:
                current_sum[s] += rk[s]
        rank_text = "/".join(f"{rk[s]:g}" if s in rk else "-" for s in SYSTEMS)
        times = "/".join(f"{got[s].get('fit_seconds') or got[s]['wall_seconds']:.0f}" if s in got else "-"
                         for s in SYSTEMS)
        lines.append(f"| {dataset}{' †' if earlier else ''} | {group[0]['task']} | {ARROW[metric]} | "
                     + " | ".join(cells)
                     + f" | {rank_text}{'' if full else ' (partial)'} | {times} |")
    mean = {s: (rank_sum[s] / complete if complete else None) for s in SYSTEMS}
    lines.append(f"| **mean rank** ({complete} datasets) | | | "
                 + " | ".join(f"**{mean[s]:.2f}**" if mean[s] is not None else "-" for s in SYSTEMS) + " | | |")
    lines.append("| datasets won | | | " + " | ".join(str(wins[s]) for s in SYSTEMS) + " | | |")
    if current and current < complete:
        lines.append(f"| mean rank, without † ({current} datasets) | | | "
                     + " | ".join(f"{current_sum[s] / current:.2f}" for s in SYSTEMS) + " | | |")
    if current < complete:
        lines += ["", "† Run at an earlier stop, before `started_at` and `commit` were recorded: on a machine "
                  "shared with other test suites (1-minute load 3.4 to 8.8 on 2 cores) and with the Gristmill "
                  "of that time (sequential two-threaded folds, refit on the training rows only). Kept so every "
                  "dataset has a row; not comparable with the rows without †."]
    return lines, {"mean_rank": mean, "complete": complete, "wins": wins,
                   "mean_rank_without_earlier": {s: current_sum[s] / current for s in SYSTEMS} if current else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--scratch", type=Path, default=HERE / "scratch")
    parser.add_argument("--bootstrap", action="store_true",
                        help="add paired bootstrap intervals (needs the predictions in --scratch)")
    parser.add_argument("--resamples", type=int, default=300)
    args = parser.parse_args()
    import sys

    sys.path.insert(0, str(HERE))
    from datasets import DATASETS

    all_rows = rows(args.out)
    budgets = sorted({r["budget"] for r in all_rows})
    md = ["# AutoML benchmark results", "",
          "Generated by `bench/automl/report.py` from the JSON files beside it. Scores are on each "
          "dataset's held-out 20% test split (identical for every system). G = Gristmill, "
          "F = FLAML 2.7, A = AutoGluon 1.6 medium_quality, B = AutoGluon 1.6 best_quality, L = LightGBM "
          "with its default settings (no tuning, the budget unused). Time used = the system's fit call "
          "(Gristmill: the whole `train()`, including MLflow logging and registration). "
          "Best score per dataset in bold.", ""]
    summary = {}
    for budget in budgets:
        lines, summary[budget] = table(all_rows, budget, DATASETS)
        md += [f"## Budget {budget} s", ""] + lines + [""]
        bad = [r for r in all_rows if r["budget"] == budget and r["status"] != "ok"]
        for r in bad:
            md.append(f"- {r['dataset']} / {r['system']}: {r['status']}: `{(r.get('error') or '')[-300:]}`")
        over = [r for r in all_rows if r["budget"] == budget and (r.get("fit_seconds") or 0) > budget * 1.1]
        for r in over:
            md.append(f"- {r['dataset']} / {r['system']}: used {r['fit_seconds']:.0f} s of a {budget} s budget")
        if args.bootstrap:
            md += ["", f"Gristmill minus the best peer on each dataset's test split, with a 90% paired "
                   f"bootstrap interval ({args.resamples} resamples of the test rows; positive = Gristmill better "
                   "for ROC AUC, worse for log loss and RMSE):", "",
                   "| dataset | metric | best peer | G - peer | 90% interval | within noise |", "|---|---|---|---|---|---|"]
            cache_path = args.out / f"budget_{budget}" / "bootstrap.json"
            cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
            for dataset in DATASETS:
                got = {r["system"]: r for r in all_rows if r["budget"] == budget and r["dataset"] == dataset}
                if "gristmill" not in got or got["gristmill"]["score"] is None:
                    continue
                peers = [got[s] for s in SYSTEMS[1:] if s in got and got[s]["score"] is not None]
                if not peers:
                    continue
                metric = got["gristmill"]["metric"]
                sign = 1 if GREATER_IS_BETTER[metric] else -1
                best = max(peers, key=lambda r: sign * r["score"])
                # keyed by both scores too, so a rerun of either system is never read from a stale entry
                key = f"{dataset}:{best['system']}:{got['gristmill']['score']}:{best['score']}"
                if key not in cache:
                    found = paired_bootstrap(args.data, args.scratch, budget, dataset, "gristmill", best["system"],
                                             resamples=args.resamples)
                    if found is None:
                        continue
                    cache[key] = found
                low, high = cache[key]
                diff = got["gristmill"]["score"] - best["score"]
                md.append(f"| {dataset} | {metric} | {best['system']} | {diff:+.4g} | [{low:+.4g}, {high:+.4g}] | "
                          f"{'yes' if low < 0 < high else 'no'} |")
            cache_path.write_text(json.dumps(cache, indent=2))
            md.append("")
        loads = [r["load_before"] for r in all_rows if r["budget"] == budget]
        commits = sorted({r.get("commit", "before commits were recorded") for r in all_rows
                          if r["budget"] == budget and r["system"] == "gristmill"})
        starts = sorted(r["started_at"] for r in all_rows if r["budget"] == budget and r.get("started_at"))
        if commits:
            md.append(f"- Gristmill at commit {', '.join(commits)}"
                      + (f"; runs started {starts[0]} to {starts[-1]}" if starts else ""))
        if loads:
            md.append(f"- 1-minute load average before each run: {min(loads):.1f} to {max(loads):.1f} "
                      "(2 cores; the benchmark's own previous run raises it)")
        md.append("")
    (args.out / "RESULTS.md").write_text("\n".join(md))
    import csv

    fields = ["budget", "dataset", "system", "task", "metric", "score", "status", "fit_seconds",
              "predict_seconds", "wall_seconds", "load_before", "load_after", "seed", "version", "started_at",
              "commit"]
    with (args.out / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in sorted(all_rows, key=lambda r: (r["budget"], r["dataset"], r["system"])):
            writer.writerow(r)
    print("\n".join(md))
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
