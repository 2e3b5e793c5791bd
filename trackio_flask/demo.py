"""Write a demo project: finished runs plus one still training, logging a step every second."""

from __future__ import annotations

import math
import random
import threading
import time
from pathlib import Path

from . import sdk

PROJECT = "demo"


def _metrics(step: int, seed: float, lr: float) -> dict[str, float]:
    noise = random.gauss(0, 0.03)
    loss = 2.5 * math.exp(-step / (180 * seed)) + 0.15 + noise
    values = {"train/loss": loss, "train/lr": lr * min(1.0, step / 50) * 0.5 *
              (1 + math.cos(math.pi * min(step, 1000) / 1000)),
              "train/grad_norm": abs(random.gauss(1.0, 0.3)) + (4.0 if step % 97 == 0 else 0.0)}
    if step % 20 == 0:
        values["eval/loss"] = loss + 0.1 + abs(noise)
        values["eval/accuracy"] = min(0.99, 1 - loss / 3 + random.gauss(0, 0.01))
    return values


def _system(step: int) -> dict[str, float]:
    return {"cpu/utilization": 40 + 30 * math.sin(step / 30) + random.random() * 5,
            "memory/percent": 35 + step / 100,
            "gpu/0/utilization": 85 + random.random() * 10,
            "gpu/0/temp": 60 + random.random() * 4}


def write_finished_runs(data_dir: Path, runs: int = 3, steps: int = 400) -> None:
    """Log finished runs with train/eval metrics, configs and system metrics."""
    started = time.time() - runs * steps * 2.0 - 600  # finished ten minutes ago
    for index in range(runs):
        start = started + index * steps * 2.0
        lr = [3e-4, 1e-3, 3e-3, 1e-4][index % 4]
        run = sdk.init(project=PROJECT, name=f"baseline-{index}", data_dir=str(data_dir),
                       config={"lr": lr, "batch_size": 32 * (index + 1), "optimizer": "adamw"},
                       group="baselines")
        for step in range(steps):
            # Spread the finished runs over the past, two seconds per step.
            stamp = start + step * 2.0
            run.log(_metrics(step, 1 + index * 0.4, lr), step=step, timestamp=stamp)
            if step % 10 == 0:
                run.log_system(_system(step), timestamp=stamp)
        sdk.finish()


def start_live_run(data_dir: Path, stop: threading.Event, interval: float = 1.0) -> threading.Thread:
    """Log one step per second to a run named `live` until `stop` is set; a second demo goes
    on with the same run (its next step), rather than adding another run named `live`."""

    def train() -> None:
        run = sdk.init(project=PROJECT, name="live", data_dir=str(data_dir), resume="allow",
                       config={"lr": 1e-3, "batch_size": 64, "optimizer": "lion"}, group="live")
        step = run.next_step
        while not stop.wait(interval):
            run.log(_metrics(step, 1.6, 1e-3), step=step)
            if step % 5 == 0:
                run.log_system(_system(step))
            step += 1
        run.finish()

    thread = threading.Thread(target=train, name="demo-live-run", daemon=True)
    thread.start()
    return thread


def prepare(data_dir: Path) -> None:
    """Create the finished demo runs once; a second `make demo` reuses them."""
    if not (data_dir / f"{PROJECT}.db").exists():
        write_finished_runs(data_dir)
