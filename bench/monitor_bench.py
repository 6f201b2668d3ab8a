"""Monitoring benchmark: Gristmill's monitoring job beside a plain Evidently DataDriftPreset.

    uv run python bench/monitor_bench.py [--rows 1000000] [--columns 50] [--evidently-timeout 1800]

Writes a reference and a current frame (``--rows`` x ``--columns``: 80% numerical, 20% categorical;
a fifth of the columns drifted in the current one) to Parquet, then measures, each in a fresh
process so peak memory (VmHWM) is its own:

1. ``gristmill-cold``: the whole job (`monitoring.runner.run_job`) on a workspace whose reference
   statistics are not cached yet: reads the reference, computes its statistics, reads the current
   frame, samples it, runs the drift and quality checks, writes Evidently's HTML + JSON on a sample,
   the summary, the history row and the Evidently workspace run;
2. ``gristmill-warm``: the same job again (reference statistics cached: the steady state of a
   scheduled job of one model version);
3. ``evidently``: ``Report([DataDriftPreset()]).run(current, reference)`` on the full frames, then
   its JSON (no HTML: that only adds to its time).

Every wall time includes the imports and reading the Parquet frames (``run_seconds`` of Evidently
is its ``Report.run`` alone).

Then it compares the drifted-column verdicts and prints every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def make_data(folder: Path, rows: int, columns: int, seed: int = 0) -> dict:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_cat = max(1, columns // 5)
    n_num = columns - n_cat
    drifted = [f"num_{i}" for i in range(0, n_num, 5)] + [f"cat_{i}" for i in range(0, n_cat, 5)]

    def frame(current: bool) -> pd.DataFrame:
        data = {}
        for i in range(n_num):
            name = f"num_{i}"
            shift = 0.5 if current and name in drifted else 0.0
            base = rng.normal(shift, 1.0, rows) if i % 2 == 0 else rng.gamma(2.0 + shift * 2, 1.0, rows)
            base[rng.random(rows) < 0.02] = np.nan
            data[name] = base
        for i in range(n_cat):
            name = f"cat_{i}"
            k = 4 + i % 8
            p = np.linspace(1, 2, k)
            if current and name in drifted:
                p = p[::-1] ** 3
            data[name] = pd.Categorical.from_codes(rng.choice(k, rows, p=p / p.sum()),
                                                   [f"v{j}" for j in range(k)]).astype(str)
        return pd.DataFrame(data)

    reference, current = frame(False), frame(True)
    reference.insert(0, "id", np.arange(rows).astype(str))
    reference["y"] = rng.random(rows) < 0.3
    reference.to_parquet(folder / "reference.parquet", index=False)
    current.to_parquet(folder / "current.parquet", index=False)
    return {"drifted": drifted, "features": [c for c in current.columns]}


def peak_mb() -> float:
    """This process's peak resident memory: VmHWM (ru_maxrss survives exec: it would report the
    parent's peak when that was higher)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def part_gristmill(folder: Path) -> dict:
    import yaml

    from gristmill.spec import parse_spec
    from gristmill.workspace import Workspace
    from monitoring.jobs import JobSpec
    from monitoring.runner import run_job

    ws = Workspace.resolve(folder / "ws").ensure()
    spec_data = {"project": "bench", "sources": [{"path": "x"}], "entity": {"name": "e", "key": "id"},
                 "features": [{"table": "t"}], "label": {"table": "labels", "target": "y", "timestamp": "ts"}}
    ws.spec_path("bench").parent.mkdir(parents=True, exist_ok=True)
    ws.spec_path("bench").write_text(yaml.safe_dump(spec_data))
    datasets = ws.datasets("bench")
    datasets.mkdir(parents=True, exist_ok=True)
    target = datasets / "bench-0-20260101T000000.parquet"
    if not target.exists():
        target.symlink_to(folder / "reference.parquet")
        meta = json.loads((folder / "meta.json").read_text())
        target.with_suffix(".json").write_text(json.dumps({"key": "id", "target": "y",
                                                           "features": meta["features"]}))
    job = JobSpec(name="bench", labels={"enabled": False}, thresholds={"drift_share": 0.5})
    started = time.perf_counter()
    summary = run_job(ws, parse_spec(spec_data, "bench.yaml"), job, current_file=folder / "current.parquet")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": peak_mb(), "drifted": sorted(summary["drift"]["drifted_columns"]),
            "reference_cached": summary["reference_cached"], "sampled_rows": summary["drift"]["sampled_rows"],
            "epsilon": summary["drift"]["sample_error_bound"]["epsilon"],
            "html": summary["history"]["html_path"]}


def part_evidently(folder: Path) -> dict:
    started = time.perf_counter()  # like Gristmill's job: imports and reading the frames included
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(folder / "reference.parquet").drop(columns=["id", "y"])
    current = pd.read_parquet(folder / "current.parquet")
    loaded = peak_mb()
    run_started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    payload = snapshot.dict()
    seconds = time.perf_counter() - started
    run_seconds = time.perf_counter() - run_started
    drifted = []
    for metric in payload["metrics"]:
        config = metric.get("config") or {}
        if str(config.get("type", "")).endswith(":ValueDrift"):
            value, threshold, method = metric["value"], config["threshold"], config["method"]
            is_drift = value < threshold if "p_value" in method else value >= threshold
            if is_drift:
                drifted.append(config["column"])
    return {"seconds": seconds, "run_seconds": run_seconds, "peak_mb": peak_mb(),
            "peak_after_loading_mb": loaded, "drifted": sorted(drifted)}


def run_part(name: str, folder: Path, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--part", name, "--folder", str(folder)]
    started = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout": True, "seconds": time.perf_counter() - started}
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--columns", type=int, default=50)
    ap.add_argument("--evidently-timeout", type=float, default=1800)
    ap.add_argument("--part")
    ap.add_argument("--folder", type=Path)
    args = ap.parse_args()
    if args.part:
        result = part_gristmill(args.folder) if args.part == "gristmill" else part_evidently(args.folder)
        print(json.dumps(result))
        return

    folder = Path(tempfile.mkdtemp(prefix="gm-monitor-bench-"))
    started = time.perf_counter()
    meta = make_data(folder, args.rows, args.columns)
    (folder / "meta.json").write_text(json.dumps(meta))
    print(f"data: {args.rows:,} rows x {args.columns} columns per frame, {len(meta['drifted'])} drifted "
          f"columns, written in {time.perf_counter() - started:.1f} s to {folder}", flush=True)
    cold = run_part("gristmill", folder, 3600)
    print(f"gristmill job, cold (reference statistics computed): {json.dumps(cold)}", flush=True)
    warm = run_part("gristmill", folder, 3600)
    print(f"gristmill job, warm (reference statistics cached):   {json.dumps(warm)}", flush=True)
    plain = run_part("evidently", folder, args.evidently_timeout)
    print(f"plain Evidently DataDriftPreset:                     {json.dumps(plain)}", flush=True)

    expected = sorted(meta["drifted"])
    print("\n| run | wall time (s) | peak memory (MB) | drifted columns |")
    print("|---|---|---|---|")
    for name, r in (("Gristmill job, cold", cold), ("Gristmill job, warm", warm), ("plain Evidently", plain)):
        if "seconds" in r and "drifted" in r:
            print(f"| {name} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {len(r['drifted'])} |")
        else:
            print(f"| {name} | {'> %.0f (timed out)' % r['seconds'] if r.get('timeout') else 'failed'} | - | - |")
    if "drifted" in plain:
        for name, r in (("cold", cold), ("warm", warm)):
            if "drifted" in r:
                print(f"{name}: same verdicts as Evidently: {r['drifted'] == plain['drifted']}; speed-up "
                      f"{plain['seconds'] / r['seconds']:.1f}x")
    print(f"planted drift found by Gristmill: {warm.get('drifted') == expected}")


if __name__ == "__main__":
    main()
