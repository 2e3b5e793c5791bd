"""Long-history projects for the "History at scale" table, written straight into Trackio's
schema (rows interleaved across runs, as trainers logging side by side write them).

Trackio's own writer (bench/datasets.py) needs minutes per 10 M points; this writes the same
tables and payloads (orjson bytes, one row per run and step) at several million points a minute.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson

from trackio_flask.writer import SCHEMA, TRACKIO_SCHEMA_VERSION

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CHUNK = 5_000  # steps per transaction


def metric_names(metrics: int) -> list[str]:
    return [f"{'train' if m < metrics * 2 // 3 else 'eval'}/metric_{m:02d}" for m in range(metrics)]


def build(path: Path, runs: int, steps: int, metrics: int, log=print) -> int:
    """Write runs × steps rows of `metrics` values each (plus a system sample per 100 steps);
    return the number of metric points."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    for statement in SCHEMA:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {TRACKIO_SCHEMA_VERSION}")
    names = metric_names(metrics)
    rng = np.random.default_rng(0)
    conn.execute("BEGIN")
    for run in range(runs):
        conn.execute("INSERT INTO configs (run_id, run_name, config, created_at) VALUES (?,?,?,?)",
                     (f"run{run:03d}", f"run-{run:03d}", orjson.dumps({"lr": 10.0 ** -(run % 4),
                                                                        "seed": run}),
                      START.isoformat()))
    conn.execute("COMMIT")
    decay = 500.0 + 40.0 * np.arange(metrics)
    for first in range(0, steps, CHUNK):
        chunk = np.arange(first, min(steps, first + CHUNK))
        stamps = [(START + timedelta(seconds=int(s))).isoformat() for s in chunk]
        base = np.exp(-chunk[:, None] / decay[None, :])
        rows = []
        for run in range(runs):
            values = (base + 0.05 * rng.random(base.shape) + 0.01 * run).round(6).tolist()
            rows.append([(f"run{run:03d}", stamps[i], f"run-{run:03d}", int(step),
                          orjson.dumps(dict(zip(names, values[i], strict=True))))
                         for i, step in enumerate(chunk.tolist())])
        conn.execute("BEGIN")
        # Interleaved: step s of every run, then step s+1…
        conn.executemany("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                         "VALUES (?,?,?,?,?)", [row for group in zip(*rows, strict=True)
                                                for row in group])
        system = [(f"run{run:03d}", stamps[i], f"run-{run:03d}",
                   orjson.dumps({"cpu/0/utilization": 50.0 + int(s) % 7}))
                  for i, s in enumerate(chunk.tolist()) if s % 100 == 0 for run in range(runs)]
        conn.executemany("INSERT INTO system_metrics (run_id, timestamp, run_name, metrics) "
                         "VALUES (?,?,?,?)", system)
        conn.execute("COMMIT")
        if first and first % (CHUNK * 20) == 0:
            log(f"  {first:,} of {steps:,} steps written")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return runs * steps * metrics
