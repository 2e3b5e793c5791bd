"""Build benchmark projects with trackio's own storage writer, so both servers read trackio's rows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

METRICS = 12
# Trackio's issue #573: a hyper-parameter sweep of many short runs with a few metrics each.
SWEEP = (200, 1000, 6)  # runs, steps, metrics
# The first-load sizes of the benchmark (runs, steps, metrics): table 3 of BENCHMARKS.md.
SIZES = [(8, 5000, METRICS), (32, 5000, METRICS), (8, 200_000, METRICS), SWEEP]


def trackio_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "TRACKIO_DIR": str(data_dir), "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def metric_names(metrics: int = METRICS) -> list[str]:
    """`train/metric_00` … then `eval/…` for the last third."""
    return [f"{'train' if m < metrics * 2 // 3 else 'eval'}/metric_{m:02d}" for m in range(metrics)]


def build(data_dir: Path, project: str, runs: int, steps: int, metrics: int = METRICS) -> None:
    """Write `runs` runs × `metrics` metrics × `steps` steps through trackio.SQLiteStorage.bulk_log.

    Configs vary like a sweep (4 learning rates × 2 batch sizes × seeds), so runs can be grouped.
    """
    code = textwrap.dedent(f"""
        import math, random
        from datetime import datetime, timedelta, timezone
        from trackio.sqlite_storage import SQLiteStorage
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        for run in range({runs}):
            random.seed(run)
            run_id = f"run{{run:03d}}"
            for first in range(0, {steps}, 20000):
                chunk = range(first, min({steps}, first + 20000))
                metrics = []
                for step in chunk:
                    values = {{}}
                    for m, name in enumerate({metric_names(metrics)!r}):
                        values[name] = (
                            math.exp(-step / (500 + 40 * m)) + 0.05 * random.random() + 0.01 * run)
                    metrics.append(values)
                SQLiteStorage.bulk_log(
                    project={project!r}, run=f"run-{{run:03d}}", run_id=run_id,
                    metrics_list=metrics, steps=list(chunk),
                    timestamps=[(start + timedelta(seconds=s)).isoformat() for s in chunk],
                    config={{"lr": (1e-4, 3e-4, 1e-3, 3e-3)[run % 4],
                             "batch_size": (32, 64)[run // 4 % 2], "seed": run}}
                    if first == 0 else None)
            SQLiteStorage.bulk_log_system(
                project={project!r}, run=f"run-{{run:03d}}", run_id=run_id,
                metrics_list=[{{"cpu/0/utilization": 50.0 + s % 7}} for s in range(0, {steps}, 100)],
                timestamps=[(start + timedelta(seconds=s)).isoformat() for s in range(0, {steps}, 100)])
    """)
    subprocess.run([sys.executable, "-c", code], env=trackio_env(data_dir), check=True,
                   capture_output=True, timeout=1800)


def source_project(work: Path, runs: int, steps: int, metrics: int, log) -> tuple[str, Path]:
    """The project name of a size and the folder holding it, written once per work folder."""
    project = f"bench{runs}x{steps}" + ("" if metrics == METRICS else f"m{metrics}")
    source = work / f"src-{project}"
    if not (source / f"{project}.db").exists():
        log(f"building {runs} runs × {metrics} metrics × {steps:,} steps with trackio's writer")
        build(source, project, runs, steps, metrics)
    return project, source


def copy(source: Path, target: Path) -> Path:
    """A private copy of a data dir (trackio's server migrates files it opens)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock"))
    return target


APPEND = textwrap.dedent("""
    import sys, time, random
    from datetime import datetime, timezone
    from trackio.sqlite_storage import SQLiteStorage
    project, runs, start_step, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    names = sys.argv[5].split(",")
    step = start_step
    deadline = time.time() + seconds
    while time.time() < deadline:
        for run in range(runs):
            values = {name: random.random() for name in names}
            SQLiteStorage.bulk_log(project=project, run=f"run-{run:03d}", run_id=f"run{run:03d}",
                                   metrics_list=[values], steps=[step],
                                   timestamps=[datetime.now(timezone.utc).isoformat()])
        step += 1
        time.sleep(max(0.0, 1.0 - (time.time() % 1.0)))
""")


def start_appender(data_dir: Path, project: str, runs: int, start_step: int,
                   seconds: float, metrics: int = METRICS) -> subprocess.Popen:
    """Append one step per run per second (trackio's writer) for `seconds`."""
    return subprocess.Popen([sys.executable, "-c", APPEND, project, str(runs), str(start_step),
                             str(seconds), ",".join(metric_names(metrics))], env=trackio_env(data_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
