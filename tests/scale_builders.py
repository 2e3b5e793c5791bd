"""Projects of many runs with trackio-style 32-hex run ids, written in bulk (one transaction)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
from builders import ProjectDB, stamp


def run_id(index: int) -> str:
    """A trackio-like run id: 32 hex characters."""
    return hashlib.md5(f"run-{index}".encode()).hexdigest()


def many_runs(path: Path, runs: int, steps: int = 3, metrics: int = 2) -> list[str]:
    """`runs` runs created one second apart (run-00000 oldest), each logging `metrics` metrics
    over `steps` steps; returns the run ids in creation order."""
    db = ProjectDB(path)
    ids = [run_id(index) for index in range(runs)]
    names = [f"loss_{m}" for m in range(metrics)]
    db.conn.execute("BEGIN")
    db.conn.executemany(
        "INSERT INTO configs (run_id, run_name, config, created_at) VALUES (?, ?, ?, ?)",
        [(ids[r], f"run-{r:05d}", orjson.dumps({"lr": (1e-3, 3e-4)[r % 2], "seed": r}),
          stamp(r)) for r in range(runs)])
    db.conn.executemany(
        "INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) VALUES (?, ?, ?, ?, ?)",
        [(ids[r], stamp(r + s), f"run-{r:05d}", s,
          orjson.dumps({name: 1.0 / (s + 1) + r * 1e-4 + m for m, name in enumerate(names)}))
         for r in range(runs) for s in range(steps)])
    db.conn.execute("COMMIT")
    db.close()
    return ids
