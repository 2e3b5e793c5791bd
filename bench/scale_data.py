"""Projects of many runs (issue #19's sweeps) in trackio's schema, written in bulk.

trackio's own writer opens a connection per call, which makes 10,000 runs a matter of many
minutes; this writes the same tables, indexes and rows (32-hex run ids, JSON metrics, configs
like a sweep) in one transaction per 100,000 rows, so the bench's quick mode stays quick.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson

from trackio_flask.writer import SCHEMA, TRACKIO_SCHEMA_VERSION

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
METRIC_NAMES = ("train/loss", "train/acc", "eval/loss", "eval/acc", "train/lr", "eval/f1")


def run_id(index: int) -> str:
    return hashlib.md5(f"sweep-run-{index}".encode()).hexdigest()


def build(path: Path, runs: int, metrics: int, steps: int) -> None:
    """`runs` runs (created a minute apart) × `metrics` metrics × `steps` steps."""
    names = METRIC_NAMES[:metrics]
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in SCHEMA:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {TRACKIO_SCHEMA_VERSION}")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO configs (run_id, run_name, config, created_at) VALUES (?, ?, ?, ?)",
        [(run_id(r), f"sweep-{r:05d}",
          orjson.dumps({"lr": (1e-4, 3e-4, 1e-3, 3e-3)[r % 4], "batch_size": (32, 64)[r // 4 % 2],
                        "seed": r}), (START + timedelta(minutes=r)).isoformat())
         for r in range(runs)])
    batch: list[tuple] = []
    step_grid = np.arange(steps, dtype=float)[:, None]
    scales = 1 + np.arange(len(names)) / 4
    for r in range(runs):
        rng = np.random.default_rng(r)
        rate = 1 / (50 + 5 * (r % 40))
        values = np.exp(-step_grid * rate * scales) + 0.05 * rng.random((steps, len(names)))
        key, name, created = run_id(r), f"sweep-{r:05d}", START + timedelta(minutes=r)
        batch.extend((key, (created + timedelta(seconds=s)).isoformat(), name, s,
                      orjson.dumps(dict(zip(names, row, strict=True))))
                     for s, row in enumerate(values.tolist()))
        if len(batch) >= 100_000:
            conn.executemany("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                             "VALUES (?, ?, ?, ?, ?)", batch)
            batch.clear()
    conn.executemany("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                     "VALUES (?, ?, ?, ?, ?)", batch)
    conn.execute("COMMIT")
    conn.close()


def project(work: Path, runs: int, metrics: int, steps: int, log) -> tuple[str, Path]:
    """The project name of a size and the data dir holding it, built once per work folder."""
    name = f"sweep{runs}x{metrics}x{steps}"
    folder = work / f"scale-{name}"
    if not (folder / f"{name}.db").exists():
        log(f"building {runs:,} runs × {metrics} metrics × {steps:,} steps (bulk, trackio schema)")
        build(folder / f"{name}.db", runs, metrics, steps)
    return name, folder
