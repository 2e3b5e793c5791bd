"""Group bands and the Sweep tab at sweep sizes: what a grouped Metrics page and the Sweep tab
cost the server (a first viewer of the view, and a later one) and the wire, beside the same
page with a line per run. Trackio has no grouped chart or sweep view (its #657 parallel
coordinates request was declined), so there is no trackio column.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ..datasets import SWEEP, copy, source_project
from ..measure import Http
from ..procs import start_ours

NUMBER = 28
TITLE = "Sweeps: group bands and the Sweep tab (server time and page bytes)"
FULL = {"sizes": [SWEEP, (1000, 200, 4)], "repeats": 5}  # < 10 min with the builds
QUICK = {"sizes": [(24, 200, 6)], "repeats": 2}
VIEWS = [("Metrics, a line per run", "/projects/{p}"),
         ("Metrics, grouped by lr (mean, min–max)", "/projects/{p}?group=config:lr"),
         ("Metrics, grouped by lr (median, 95% CI)", "/projects/{p}?group=config:lr&agg=median&band=ci95"),
         ("Sweep tab", "/projects/{p}/sweep"),
         ("Sweep tab, lr groups' difference", "/projects/{p}/sweep?group=config:lr")]


def measure(work: Path, size: tuple[int, int, int], repeats: int, log) -> dict[str, tuple]:
    """Per view: (first viewer ms, later viewer median ms, wire bytes of the page)."""
    runs, steps, metrics = size
    project, source = source_project(work, runs, steps, metrics, log)
    data = copy(source, work / f"sweep-views-{project}")
    server = start_ours(data, work)
    out: dict[str, tuple] = {}
    try:
        http = Http(server.url)
        # The project loaded into memory and the chart specs compiled: not timed here.
        http.get(f"/projects/{project}?smoothing=1")
        for name, path in VIEWS:
            url = path.format(p=project)
            status, _, first = http.get(url)
            if status != 200:
                raise RuntimeError(f"{url} answered {status}")
            wire = http.last_wire_bytes
            later = [http.get(url)[2] for _ in range(repeats)]
            out[name] = (first * 1000, statistics.median(later) * 1000, wire)
        http.close()
    finally:
        server.stop()
    return out


def section(work: Path, quick: bool, log) -> str:
    cfg = QUICK if quick else FULL
    results = [(size, measure(work, size, cfg["repeats"], log)) for size in cfg["sizes"]]
    head = " | ".join(f"{r:,} runs × {m} × {s:,}: first / later / bytes" for (r, s, m), _ in results)
    lines = [f"### {NUMBER}. {TITLE}", "",
             "trackio_flask under gunicorn (1 worker, 8 threads), the project already in memory "
             "and the chart specs compiled; "
             "\"first\" is the first viewer of that view (aggregates computed), \"later\" the "
             "median of the next viewers (cached). Bytes as sent (brotli).", "",
             f"| view | {head} |", "|---|" + "---|" * len(results)]
    for name, _ in VIEWS:
        cells = []
        for _, by_view in results:
            first, later, wire = by_view[name]
            cells.append(f"{first:,.0f} ms / {later:,.1f} ms / {wire / 1000:,.1f} kB")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
