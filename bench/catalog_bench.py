"""What the catalog lock costs: ingest N small files with 1 process, then with 8 at once.

    uv run python bench/catalog_bench.py [--files 64] [--rows 200] [--dir /tmp/gristmill-catalog-bench]

Every file is one ingestion run (``ingestion.ingest``, the real entry point: read, type, write
Parquet, then the locked catalog update). Three layouts, each in a fresh workspace:

- ``1 process``: one process ingests every file, one after another, each into its own project;
- ``8 processes, 8 projects``: eight processes ingest N/8 files each, each process its own
  projects: they meet only at the catalog lock;
- ``8 processes, 1 project``: eight processes ingest N/8 files each into one project: the project
  lock serialises whole runs (they read and rewrite the same ``_catalog.json``).

Each worker records, per run, the wall time and the time spent waiting for and holding the catalog
(``gristmill.catalog.catalog_writer``). Figures print as a table; copy them to docs/benchmarks.md
with the machine they ran on (and how busy it was).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
from contextlib import contextmanager
from pathlib import Path
import gristmill.catalog as catalog
from ingestion import SourceSpec, ingest

ws, project_of, files = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
waits, holds, runs = [], [], []
inner = catalog.catalog_writer

@contextmanager
def timed(path, timeout=None):
    t0 = time.perf_counter()
    with inner(path, timeout) as con:
        t1 = time.perf_counter()
        yield con
    waits.append(t1 - t0)  # lock wait + opening the catalog file
    holds.append(time.perf_counter() - t1)

catalog.catalog_writer = timed
for n, f in enumerate(files):
    project = project_of if project_of != "-" else f"p{Path(f).name}"
    t = time.perf_counter()
    ingest([SourceSpec(path=Path(f))], project=project, lake_dir=ws / "lake" / project,
           catalog=ws / "catalog.duckdb")
    runs.append(time.perf_counter() - t)
print(json.dumps({"runs": runs, "waits": waits, "holds": holds}))
"""


def make_files(folder: Path, count: int, rows: int) -> list[str]:
    out = []
    for n in range(count):
        sub = folder / f"{n:03d}"
        sub.mkdir(parents=True)
        lines = ["id,amount,when"] + [f"{i},{i * 0.5},2026-01-{1 + i % 28:02d}" for i in range(rows)]
        (sub / f"t{n:03d}.csv").write_text("\n".join(lines) + "\n")
        out.append(str(sub))
    return out


def run(layout: str, files: list[str], procs: int, base: Path) -> dict:
    ws = base / f"ws-{layout}"
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'platform'}:{ROOT}", GRISTMILL_WORKSPACE=str(ws))
    project = "one" if layout == "1project" else "-"
    chunks = [files[i::procs] for i in range(procs)]
    started = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(ws), project, json.dumps(chunk)],
                                env=env, stdout=subprocess.PIPE, text=True) for chunk in chunks]
    results = []
    for worker in workers:
        out, _ = worker.communicate()
        if worker.returncode != 0:
            raise SystemExit(f"a worker failed ({layout})")
        results.append(json.loads(out))
    wall = time.perf_counter() - started
    runs = sorted(r for res in results for r in res["runs"])
    waits = sorted(w for res in results for w in res["waits"])
    holds = sorted(h for res in results for h in res["holds"])

    def pct(values, q):
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    return {"layout": layout, "processes": procs, "files": len(files), "wall_s": round(wall, 1),
            "files_per_s": round(len(files) / wall, 2), "run_p50_ms": round(pct(runs, 0.5)),
            "run_p95_ms": round(pct(runs, 0.95)), "catalog_wait_p50_ms": round(pct(waits, 0.5), 1),
            "catalog_wait_p95_ms": round(pct(waits, 0.95), 1), "catalog_hold_p50_ms": round(pct(holds, 0.5), 1),
            "catalog_share": round(sum(waits + holds) / sum(runs), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gristmill-catalog-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    files = make_files(args.dir / "src", args.files, args.rows)
    rows = [run("1proc", files, 1, args.dir), run("8projects", files, 8, args.dir),
            run("1project", files, 8, args.dir)]
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))
    print(f"load average: {os.getloadavg()}, cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
