"""The prediction log under SIGKILL: a real process appending at a steady rate is killed; what was
answered before the last second must be on disk (the log writes at least every FLUSH_SECONDS)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb

from gristmill.serving.prediction_log import FLUSH_SECONDS

RATE = 200  # predictions per second, steady: the log never sees a pause

SERVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gristmill.serving.prediction_log import PredictionLog, records

    log = PredictionLog(Path(sys.argv[1]))
    answered = open(sys.argv[2], "w", buffering=1)
    n, start = 0, time.monotonic()
    while True:
        n += 1
        log.append(records("predict", "1", 0.1, [{"n": n}], [{"prediction": 1.0}], [str(n)]))
        answered.write(f"{n}\\n")  # the client has its answer
        time.sleep(max(0.0, start + n / %d - time.monotonic()))
""" % RATE)


def test_sigkill_under_steady_traffic_loses_at_most_the_last_second(tmp_path):
    folder, answered = tmp_path / "log", tmp_path / "answered.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(folder), str(answered)], env=env)
    try:
        time.sleep(4.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    lines = answered.read_text().split()
    total = int(lines[-1]) if lines else 0
    logged = duckdb.sql(f"SELECT _entity_id::INT AS n FROM read_parquet('{folder}/*/*.parquet')").fetchall()
    ids = sorted(n for (n,) in logged)
    lost = total - len(ids)
    print(f"answered {total}, logged {len(ids)}, lost {lost} ({lost / RATE:.2f} s of traffic)")
    assert total > 2 * RATE  # steady traffic for seconds
    assert ids == list(range(1, len(ids) + 1))  # what is logged is everything up to a point
    # the window: one flush period, plus scheduling slack on a shared 2-core machine
    assert lost <= RATE * (FLUSH_SECONDS + 0.5)
