"""Ingestion throughput beside DuckDB's own CSV -> Parquet copy, on the same files in the same run.

    uv run python bench/ingest_bench.py [--size-mb 1000] [--messy-mb 200] [--dir /tmp/gristmill-bench]

It writes a clean CSV of about ``--size-mb`` and its Parquet twin, and a messy European-dialect CSV
(``;``, decimal commas, dd.mm.yyyy, a title row, 0.01% malformed lines). Each measurement runs in a
fresh Python process so peak memory (max RSS) is its own:

- ``duckdb COPY``: ``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)``, DuckDB's sniffer
  and types: the peer. DuckDB's sniffer cannot read the messy file (title rows, duckdb#11840), so
  there it is given the dialect by hand (``delim=';', skip=2, store_rejects=true``) and leaves
  decimal commas, dd.mm.yyyy dates and Ja/Nein as text;
- ``gristmill ingest``: the full path (content detection, sha256 lineage, dialect sniffing, type
  inference, quarantine, zstd Parquet, DuckDB views); once more on the clean CSV with its staging
  memory held to 400 MB (``GRISTMILL_INGEST_MEMORY``), to show memory stays bounded.

With ``--repeat N`` each measurement runs N times, the peer's and Gristmill's alternating so both
see the same load, and the median run is shown (every run's seconds go to stderr and ``--json``).
Figures print as a table; copy them to docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROW_BYTES = 78  # about, for the clean table below

PEER = """
import duckdb, resource, sys, time
src, dst, options = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.monotonic()
con = duckdb.connect()
reader = "read_parquet" if src.endswith(".parquet") else "read_csv"
con.execute(f"COPY (SELECT * FROM {reader}('{src}'{options})) TO '{dst}' (FORMAT parquet, COMPRESSION zstd)")
rows = con.execute(f"SELECT count(*) FROM read_parquet('{dst}')").fetchone()[0]
print(rows, time.monotonic() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

GRISTMILL = """
import resource, shutil, sys, time
from pathlib import Path
from ingestion import SourceSpec, ingest
src, work = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(work, ignore_errors=True)
t = time.monotonic()
report = ingest([SourceSpec(path=src, name="bench")], project="bench", lake_dir=work / "lake",
                catalog=work / "catalog.duckdb")
rows = sum(tab.rows for tab in report.tables)
print(rows, time.monotonic() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      report.quarantined_rows)
"""


def make_clean(folder: Path, size_mb: int) -> tuple[Path, Path]:
    import duckdb

    csv_path, parquet_path = folder / f"clean_{size_mb}mb.csv", folder / f"clean_{size_mb}mb.parquet"
    if csv_path.exists() and parquet_path.exists():
        return csv_path, parquet_path
    rows = size_mb * 1024 * 1024 // ROW_BYTES
    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE t AS SELECT
          i AS order_id,
          'C' || lpad(CAST(i % 200000 AS VARCHAR), 7, '0') AS customer_id,
          TIMESTAMP '2023-01-01' + to_seconds(i % 31536000) AS ordered_at,
          round(random() * 1000, 2) AS amount,
          CAST(1 + i % 9 AS INTEGER) AS quantity,
          ['books', 'garden', 'toys', 'food', 'tools'][1 + i % 5] AS category,
          i % 7 = 0 AS returned,
          round(random(), 4) AS discount,
          'store-' || CAST(i % 311 AS VARCHAR) AS store
        FROM range({rows}) r(i)""")
    con.execute(f"COPY t TO '{csv_path}' (HEADER, DELIMITER ',')")
    con.execute(f"COPY t TO '{parquet_path}' (FORMAT parquet, COMPRESSION zstd)")
    return csv_path, parquet_path


def make_messy(folder: Path, size_mb: int) -> Path:
    import duckdb

    path = folder / f"messy_{size_mb}mb.csv"
    if path.exists():
        return path
    rows = size_mb * 1024 * 1024 // 45
    body = folder / "messy_body.csv"
    con = duckdb.connect()
    con.execute(f"""
        COPY (SELECT
          'K' || CAST(i % 50000 AS VARCHAR) AS "Kundennummer",
          strftime(DATE '2023-01-01' + CAST(i % 365 AS INTEGER), '%d.%m.%Y') AS "Rechnungsdatum",
          CASE WHEN i % 10000 = 17 THEN 'zwölf'
               ELSE replace(printf('%.2f', random() * 2000), '.', ',') END AS "Monatsbetrag",
          CASE WHEN i % 3 = 0 THEN 'Ja' ELSE 'Nein' END AS "Bezahlt",
          CASE WHEN i % 10 = 0 THEN 'k.A.' ELSE printf('%d %%', i % 100) END AS "Rabatt",
          'Tarif ' || CAST(i % 13 AS VARCHAR) AS "Tarif"
        FROM range({rows}) r(i)) TO '{body}' (HEADER, DELIMITER ';')""")
    with open(path, "w", encoding="utf-8") as out, open(body, encoding="utf-8") as src:
        out.write("Rechnungsexport Acme GmbH\n\n")
        for n, line in enumerate(src):
            out.write(line)
            if n and n % 10000 == 0:
                out.write("kaputt;zeile\n")  # a malformed line
    body.unlink()
    return path


def run(code: str, *args: str, memory: str | None = None) -> list[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if memory:
        env["GRISTMILL_INGEST_MEMORY"] = memory
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return out.stdout.strip().splitlines()[-1].split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--messy-mb", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gristmill-bench"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each measurement, peer and Gristmill alternating; the median is shown")
    parser.add_argument("--inputs-only", action="store_true", help="only write the input files")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    if args.inputs_only:
        make_clean(args.dir, args.size_mb)
        make_messy(args.dir, args.messy_mb)
        return
    # inputs are made in a child process: the peak RSS of this one is passed on to every child it
    # starts (Linux keeps ru_maxrss across fork and exec), which made every figure at least its own
    subprocess.run([sys.executable, __file__, "--inputs-only", "--size-mb", str(args.size_mb),
                    "--messy-mb", str(args.messy_mb), "--dir", str(args.dir)], check=True)
    csv_path, parquet_path = make_clean(args.dir, args.size_mb)
    messy = make_messy(args.dir, args.messy_mb)
    print(f"inputs ready in {time.monotonic() - t:.0f} s", file=sys.stderr)
    results = []
    messy_options = ", delim=';', skip=2, header=true, store_rejects=true"
    for label, path, options in (("clean CSV", csv_path, ""), ("Parquet twin", parquet_path, ""),
                                 ("messy CSV", messy, messy_options)):
        mb = path.stat().st_size / 1024 / 1024
        runs: dict[str, list[dict]] = {"duckdb COPY": [], "gristmill ingest": [], "gristmill, 400 MB": []}
        for _ in range(args.repeat):  # peer and Gristmill alternate: both see the same load
            rows, secs, rss = run(PEER, str(path), str(args.dir / "peer_out.parquet"), options)
            runs["duckdb COPY"].append({"rows": int(rows), "seconds": float(secs), "rss": int(rss)})
            for system, memory in (("gristmill ingest", None), ("gristmill, 400 MB", "400MB")):
                if memory and label != "clean CSV":  # staging held to 400 MB: the clean CSV only
                    continue
                rows, secs, rss, quarantined = run(GRISTMILL, str(path), str(args.dir / "gristmill_ws"),
                                                   memory=memory)
                runs[system].append({"rows": int(rows), "seconds": float(secs), "rss": int(rss),
                                     "quarantined": int(quarantined)})
        peer = None
        for system, got in runs.items():
            if not got:
                continue
            mid = sorted(got, key=lambda r: r["seconds"])[len(got) // 2]  # the median run
            row = {"input": label, "system": system, "mb": round(mb), "rows": mid["rows"],
                   "seconds": round(mid["seconds"], 2), "mb_per_s": round(mb / mid["seconds"], 1),
                   "peak_rss_mb": round(mid["rss"] / 1024), "runs_s": [round(r["seconds"], 2) for r in got]}
            if "quarantined" in mid:
                row["quarantined"] = mid["quarantined"]
                row["vs_duckdb"] = round(peer["seconds"] / row["seconds"], 2)
            else:
                peer = row
            results.append(row)
        print(f"{label}: " + ", ".join(f"{r['system']} {r['runs_s']} s" for r in results if r["input"] == label),
              file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'input':14} {'system':18} {'MB':>6} {'rows':>11} {'quar.':>6} {'s':>7} {'MB/s':>7} "
          f"{'RSS MB':>7} {'x duckdb':>8}")
    for r in results:
        print(f"{r['input']:14} {r['system']:18} {r['mb']:>6} {r['rows']:>11} {r.get('quarantined', ''):>6} "
              f"{r['seconds']:>7} {r['mb_per_s']:>7} {r['peak_rss_mb']:>7} {r.get('vs_duckdb', ''):>8}")


if __name__ == "__main__":
    main()
