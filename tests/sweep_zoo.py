"""A small sweep: 2 learning rates × 3 seeds (plus a hostile run), nested config keys, Trackio
groups and a loss whose per-step values are known, so bands and summaries can be checked."""

from __future__ import annotations

from pathlib import Path

from builders import ProjectDB

SWEEP = "sweep"
HOSTILE = "<img src=x onerror=alert(1)>"
STEPS = range(20)
# run name -> (lr, depth, seed, offset); loss = offset + 10 / (step + 1)
RUNS = {
    "lr1-seed0": (0.001, 4, 0, 0.0),
    "lr1-seed1": (0.001, 8, 1, 0.5),
    "lr1-seed2": (0.001, 4, 2, 0.25),
    "lr3-seed0": (0.0003, 8, 0, 2.0),
    "lr3-seed1": (0.0003, 4, 1, 3.0),
    "lr3-seed2": (0.0003, 8, 2, 2.5),
}
HOSTILE_RUN = f"lr9-{HOSTILE}"


def loss(offset: float, step: int) -> float:
    return offset + 10 / (step + 1)


def log_sweep(data_dir: Path) -> Path:
    """Write the sweep project (newest run last); return its path."""
    path = data_dir / f"{SWEEP}.db"
    db = ProjectDB(path)
    for name, (lr, depth, seed, offset) in RUNS.items():
        # A hostile config key with two values, so it is offered as an axis and a grouping.
        db.config(name, {"lr": lr, "seed": seed, "model": {"depth": depth, "act": "relu"},
                         HOSTILE: "x" if seed else HOSTILE,
                         "_Created": "2026-01-01T00:00:00", "_Username": "eve",
                         "_Group": f"lr={lr}"})
        db.log_many(name, STEPS, lambda step, o=offset: {"loss": loss(o, step),
                                                         "acc": 1 - loss(o, step) / 20})
    db.config(HOSTILE_RUN, {"lr": HOSTILE, "seed": 9, HOSTILE: HOSTILE,
                            "model": {"depth": HOSTILE, "act": HOSTILE}, "_Group": HOSTILE})
    db.log_many(HOSTILE_RUN, STEPS, lambda step: {"loss": 5.0, "acc": 0.5})
    db.close()
    return path
