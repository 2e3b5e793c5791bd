"""Runs at scale (issue 19): a project of 200, 2,000 and 10,000 runs under the shipped gunicorn.

Per size, on a fresh server: the first page (the project read from disk), then as a later
viewer would see it: the Metrics page's bytes on the wire and server round trip (median of 5)
for the default view (the latest 10 runs) and with every run selected (`sel=all`: 50 lines and
one band per chart), the first screen of charts in Chromium for both, the runs table's first
page, and the worker's peak RSS. trackio's own server beside it on the smallest size.
"""

from __future__ import annotations

import os
import statistics
import time
import urllib.request
from pathlib import Path

from .. import browser as chromium_bench
from ..datasets import copy
from ..measure import Http
from ..procs import start_ours, start_theirs
from ..scale_data import project as scale_project

NUMBER = 19
TITLE = "Runs at scale: 200 / 2,000 / 10,000 runs"
# (runs, metrics, steps)
FULL = {"sizes": [(200, 6, 1000), (2000, 6, 1000), (10_000, 4, 200)], "repeats": 5,
        "theirs": (200, 6, 1000)}
QUICK = {"sizes": [(200, 4, 20), (2000, 2, 5)], "repeats": 2, "theirs": None}
VIEWS = {"default (latest 10)": "", "all runs selected": "?sel=all"}


def _config(quick: bool) -> dict:
    """The mode's sizes; RUNS_AT_SCALE_SIZES=10000x4x200,2000x6x1000 measures only those (one
    size per run keeps each measurement under the 3 minutes a shared machine allows), and
    RUNS_AT_SCALE_REPEATS overrides the repeats."""
    cfg = dict(QUICK if quick else FULL)
    sizes = os.environ.get("RUNS_AT_SCALE_SIZES", "")
    if sizes:
        cfg["sizes"] = [tuple(int(n) for n in size.split("x")) for size in sizes.split(",")]
        cfg["theirs"] = None
    if os.environ.get("RUNS_AT_SCALE_REPEATS"):
        cfg["repeats"] = int(os.environ["RUNS_AT_SCALE_REPEATS"])
    return cfg


def _later_viewer(http: Http, path: str, repeats: int) -> tuple[float, int]:
    """Median ms of a page a later viewer gets (after one warm-up), and its wire bytes."""
    status, _, _ = http.get(path)
    assert status == 200, (path, status)
    times = []
    for _ in range(repeats):
        status, _, seconds = http.get(path)
        assert status == 200, (path, status)
        times.append(seconds * 1000)
    return statistics.median(times), http.last_wire_bytes


def _worker_memory(server) -> dict[str, float]:
    """The worker's memory now, in MB, from /proc/PID/smaps_rollup: RSS counts the pages of
    the series store it has mapped (page cache shared by every worker), Anonymous is its own."""
    import psutil

    children = psutil.Process(server.proc.pid).children()
    if not children:
        return {}
    with open(f"/proc/{children[0].pid}/smaps_rollup") as rollup:
        fields = {line.split(":")[0]: int(line.split()[1]) / 1024
                  for line in rollup.read().splitlines()[1:] if line.endswith("kB")}
    with open(f"/proc/{children[0].pid}/status") as status:
        # The worker's own peak: the table's peak RSS sums the process tree, which includes
        # the short-lived child that builds the chart specs at start (charts.py, ~140 MB).
        peak = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM"))
    return {"peak Rss": peak,
            **{name: fields.get(name, 0.0) for name in ("Rss", "Pss", "Anonymous", "Shared_Clean")}}


def _measure(work: Path, size: tuple[int, int, int], repeats: int, browser, log) -> dict:
    runs, metrics, steps = size
    project, folder = scale_project(work, runs, metrics, steps, log)
    stored = (folder / ".trackio_flask").exists()
    server = start_ours(folder, work)
    out: dict = {"size": size, "stored": stored}
    try:
        log(f"runs at scale: {runs:,} runs, first page")
        started = time.perf_counter()
        # The first page reads the whole project: more than Http's 60 s on a busy machine.
        with urllib.request.urlopen(f"{server.url}/projects/{project}", timeout=900) as answer:
            assert answer.status == 200, answer.status
            answer.read()
        out["first_page_s"] = time.perf_counter() - started
        http = Http(server.url)
        for name, query in VIEWS.items():
            ms, wire = _later_viewer(http, f"/projects/{project}{query}", repeats)
            out[name] = {"ms": ms, "bytes": wire}
            loads = [chromium_bench.first_load(browser, f"{server.url}/projects/{project}{query}",
                                               ours=True)["drawn_s"]
                     for _ in range(max(1, repeats // 2))]
            out[name]["screen_s"] = statistics.median(loads)
        ms, wire = _later_viewer(http, f"/projects/{project}/runs", repeats)
        out["runs_table"] = {"ms": ms, "bytes": wire}
        http.close()
        out["worker"] = _worker_memory(server)
        log(f"runs at scale: {runs:,} runs: first page {out['first_page_s']:.1f} s "
            f"({'series store built before' if stored else 'cold: the store is built'}); "
            + ", ".join(f"{view}: {out[view]['ms']:.0f} ms, {out[view]['screen_s']:.2f} s"
                        for view in VIEWS)
            + "; worker at the end " + ", ".join(f"{k} {v:.0f} MB"
                                                for k, v in out["worker"].items()))
    finally:
        server.stop()
    out["rss_mb"] = server.peak_rss / 2**20
    return out


def _theirs(work: Path, size: tuple[int, int, int], browser, log) -> dict:
    runs, metrics, steps = size
    project, folder = scale_project(work, runs, metrics, steps, log)
    server = start_theirs(copy(folder, work / f"scale-theirs-{project}"), work)
    try:
        log(f"runs at scale: trackio, {runs:,} runs")
        Http(server.url).get(f"/?project={project}")
        try:
            screen = chromium_bench.first_load(browser, f"{server.url}/?project={project}",
                                               ours=False)
        except Exception as exc:  # playwright's timeout: trackio drew nothing in 120 s
            log(f"runs at scale: trackio did not draw: {type(exc).__name__}")
            screen = None
    finally:
        server.stop()
    return {"screen_s": screen["drawn_s"] if screen else None,
            "bytes": screen["bytes"] if screen else None, "rss_mb": server.peak_rss / 2**20}


def section(work: Path, quick: bool, log) -> str:
    cfg = _config(quick)
    with chromium_bench.chromium() as browser:
        results = [_measure(work, size, cfg["repeats"], browser, log) for size in cfg["sizes"]]
        theirs = _theirs(work, cfg["theirs"], browser, log) if cfg["theirs"] else None
    lines = [f"### {NUMBER}. {TITLE}", "",
             "trackio_flask under gunicorn (1 worker, 8 threads), trackio-style 32-hex run ids; a "
             f"later viewer's page: median of {cfg['repeats']} round trips after one warm-up; "
             "bytes as sent (brotli); first screen: Chromium, 1400 × 1000, until every chart on "
             "screen is drawn. Data: bench/scale_data.py, trackio's schema written in bulk "
             "(trackio's own writer needs many minutes for 10,000 runs).", "",
             "| project | first page (s) | view | page on the wire | later viewer (ms) | "
             "first screen (s) | runs table (ms, bytes) | peak RSS |",
             "|---|---|---|---|---|---|---|---|"]
    for result in results:
        runs, metrics, steps = result["size"]
        label = f"{runs:,} runs × {metrics} × {steps:,}"
        first = f"{result['first_page_s']:.1f}" + ("" if result["stored"] else " (cold)")
        for at, name in enumerate(VIEWS):
            view = result[name]
            lines.append(
                f"| {label if at == 0 else ''} | {first if at == 0 else ''} | {name} | "
                f"{view['bytes'] / 1024:,.0f} kB | {view['ms']:,.0f} | {view['screen_s']:.2f} | "
                + (f"{result['runs_table']['ms']:,.0f} ms, "
                   f"{result['runs_table']['bytes'] / 1024:,.0f} kB | "
                   f"{result['rss_mb']:,.0f} MB |" if at == 0 else " | |"))
    lines += ["", "The worker's own memory (MB): its peak RSS (VmHWM; the table's peak sums the "
              "process tree, the chart-spec child included), then at the end: RSS counts the "
              "series store's mapped files, page cache every worker shares; Anonymous is the "
              "worker's own.", ""]
    lines += [f"- {r['size'][0]:,} runs: " + ", ".join(f"{k} {v:,.0f}"
                                                    for k, v in r.get("worker", {}).items())
              for r in results]
    if theirs is not None:
        runs, metrics, steps = cfg["theirs"]
        lines += ["", "| beside trackio | first screen (s) | bytes until drawn | peak RSS |",
                  "|---|---|---|---|",
                  f"| trackio, {runs:,} runs × {metrics} × {steps:,} | "
                  + (f"{theirs['screen_s']:.2f} | {theirs['bytes'] / 1024:,.0f} kB"
                     if theirs["screen_s"] is not None else "not drawn within 120 s | —")
                  + f" | {theirs['rss_mb']:,.0f} MB |"]
    else:
        lines += ["", "trackio is left out in quick mode (the smoke test) and with RUNS_AT_SCALE_SIZES."]
    lines.append("")
    return "\n".join(lines)
