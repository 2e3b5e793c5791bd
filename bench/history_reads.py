"""In-process costs of a long history (#20), beside table 30's HTTP numbers: a cold build's
CPU time on one core, and what a page's charts cost read through the min/max pyramid and row
by row (data + JSON; the bytes must be equal).

Usage (a data folder and store table 30 left with HISTORY_BENCH_KEEP=1):
    python -m bench.history_reads DATA_DIR STORE_DIR PROJECT [--build]
`--build` first builds the project into a fresh store beside STORE_DIR (minutes at 100 M).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path

import orjson

from trackio_flask import dashboard
from trackio_flask.live import ProjectStore
from trackio_flask.store import SeriesStore

RANGES = (("full history", None), ("1,000-step zoom", (250_000.0, 250_999.0)),
          ("half-history zoom", (125_000.0, 375_000.0)))


def build(data: Path, store: Path, project: str) -> None:
    fresh = store.with_name(store.name + "-cpu")
    shutil.rmtree(fresh, ignore_errors=True)
    projects = ProjectStore(data, 2**31, SeriesStore(fresh, 2**40))
    wall, cpu = time.perf_counter(), time.process_time()
    state = projects.get(project)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    points = sum(int(c.finite and sum(c.finite.values())) for c in state.metrics.values())
    print(f"cold build: {points:,} points, wall {wall:.1f} s, CPU {cpu:.1f} s = "
          f"{points / cpu / 1e6:.2f} M points/s of one core")
    shutil.rmtree(fresh, ignore_errors=True)


def reads(data: Path, store: Path, project: str) -> None:
    projects = ProjectStore(data, 2**30, SeriesStore(store, 2**40))
    state = projects.get(project)
    page = dashboard.build_page(project, state, dashboard.View(), 2000)

    def run(x_range) -> bytes:
        return orjson.dumps([dashboard.full_data(state, page, panel, 2000, x_range=x_range)
                             for panel in page.panels])

    real = dashboard._from_pyramid
    for name, x_range in RANGES:
        answers, times = {}, {}
        for how in ("pyramid", "rows"):
            dashboard._from_pyramid = real if how == "pyramid" else (lambda *args: None)
            spent = []
            for _ in range(5):
                started = time.perf_counter()
                answers[how] = run(x_range)
                spent.append(time.perf_counter() - started)
            times[how] = statistics.median(spent) * 1000
        dashboard._from_pyramid = real
        same = "identical bytes" if answers["pyramid"] == answers["rows"] else "DIFFERENT"
        print(f"{name}: pyramid {times['pyramid']:.0f} ms, rows {times['rows']:.0f} ms "
              f"({len(page.panels)} panels, {len(answers['rows']) >> 10} KB, {same})")


def main(argv: list[str]) -> None:
    data, store, project = Path(argv[0]), Path(argv[1]), argv[2]
    if "--build" in argv:
        build(data, store, project)
    reads(data, store, project)


if __name__ == "__main__":
    main(sys.argv[1:])
