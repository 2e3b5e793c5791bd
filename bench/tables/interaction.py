"""Touching the page: how long a control takes from the input to every chart on screen redrawn,
in Chromium on the 8-run project (issue 23's target: 150 ms for a run tick or a smoothing step),
beside a full page load of the same view (what a control cost when it reloaded the page), and
the first screen of charts beside trackio's in the same run.

Each control is used `repeats` times on one open page (the page's own record, stats.apply,
measures input → charts on screen redrawn); legend clicks and the theme switch, which send no
request, are timed from the click to the charts' next painted frame.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from .. import browser as chromium_bench
from ..datasets import SIZES, copy, source_project
from ..measure import Http
from ..procs import start_ours, start_theirs

NUMBER = 23
TITLE = "Touching the page: control to redraw (Chromium)"
FULL = {"size": SIZES[0], "repeats": 5}
QUICK = {"size": (2, 300, 12), "repeats": 1}

# In-place controls, made the way a user makes them (the events the page listens to), on
# repetition `n`; then the page's own record of input → charts on screen redrawn.
CONTROLS = ["run tick (one run off or on)", "smoothing step (arrow key)",
            "x-axis (step ↔ relative time)", "log y on/off"]
APPLY = """async ([name, n]) => {
  const act = {
    'run tick (one run off or on)': () =>
      document.querySelectorAll('#run-list input[type=checkbox]')[1].click(),
    'smoothing step (arrow key)': () => {
      const range = document.getElementById('smoothing');
      range.focus(); range.value = String(10 + n);
      range.dispatchEvent(new Event('input', {bubbles: true}));
      range.dispatchEvent(new Event('change', {bubbles: true})); },
    'x-axis (step ↔ relative time)': () => {
      const select = document.querySelector('select[name=x_axis]');
      select.value = n % 2 ? 'step' : 'time';
      select.dispatchEvent(new Event('change', {bubbles: true})); },
    'log y on/off': () => document.querySelector('input[name=log_y]').click(),
  }[name];
  const stats = window.trackioFlask.stats.apply, before = stats.length;
  act();
  while (stats.length === before || window.trackioControls.busy()) await new Promise(r => setTimeout(r, 5));
  return stats[stats.length - 1].ms;
}"""
# Purely visual changes: no request; the time until the next frame after the charts re-ran.
LEGEND = """async n => {
  const entry = [...window.trackioFlask.views.values()].find(e => e.view && e.kind === 'line');
  const buttons = entry.panel.querySelectorAll('.legend-item');
  const started = performance.now();
  buttons[n % buttons.length].click();
  await entry.view.runAsync();
  await new Promise(r => requestAnimationFrame(() => r()));
  return performance.now() - started;
}"""
THEME = """async () => {
  const started = performance.now();
  document.getElementById('theme-toggle').click();
  const onScreen = () => [...document.querySelectorAll('.panel')]
    .filter(p => p.getBoundingClientRect().top < innerHeight && p.getBoundingClientRect().bottom > 0);
  while (!onScreen().every(p => p.classList.contains('drawn'))) await new Promise(r => setTimeout(r, 5));
  await new Promise(r => requestAnimationFrame(() => r()));
  return performance.now() - started;
}"""


def _page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(chromium_bench.OURS_DRAWN, timeout=120_000)
    return context, page


def _controls(browser, url: str, repeats: int) -> dict[str, list[float]]:
    """ms from input to charts on screen redrawn, per control."""
    context, page = _page(browser, url)
    timings: dict[str, list[float]] = {}
    try:
        for name in CONTROLS:
            timings[name] = [page.evaluate(APPLY, [name, n]) for n in range(repeats)]
        timings["legend click (only one run)"] = [page.evaluate(LEGEND, n) for n in range(repeats)]
        timings["theme switch"] = [page.evaluate(THEME) for _ in range(repeats)]
    finally:
        context.close()
    return timings


def _reloads(browser, base: str, runs: int, repeats: int) -> dict[str, float]:
    """Seconds for a full page load of the view each control leads to (the old behaviour)."""
    # datasets.build names runs run000, run001, …: the first one ticked off.
    others = ",".join(f"run{n:03d}" for n in range(1, runs))
    views = {"run tick (one run off or on)": f"?sel=some&run_ids={others}",
             "smoothing step (arrow key)": "?smoothing=11",
             "x-axis (step ↔ relative time)": "?x_axis=time",
             "log y on/off": "?log_y=1"}
    out = {}
    for name, suffix in views.items():
        loads = [chromium_bench.first_load(browser, base + suffix, ours=True)["drawn_s"]
                 for _ in range(repeats)]
        out[name] = statistics.median(loads)
    return out


def section(work: Path, quick: bool, log) -> str:
    cfg = QUICK if quick else FULL
    runs, steps, metrics = cfg["size"]
    project, source = source_project(work, runs, steps, metrics, log)
    ours_dir = copy(source, work / f"interaction-ours-{project}")
    ours = start_ours(ours_dir, work)
    # Quick (the smoke test) leaves trackio's server and the page loads out: tiny, not compared.
    theirs = None if quick else start_theirs(copy(source, work / f"interaction-theirs-{project}"),
                                             work)
    first: dict[str, list[float]] = {"ours": [], "theirs": []}
    reloads: dict[str, float] = {}
    try:
        Http(ours.url).get(f"/projects/{project}")
        if theirs is not None:
            Http(theirs.url).get(f"/?project={project}")
        with chromium_bench.chromium() as browser:
            log("interaction: first screen")
            for _ in range(max(1, cfg["repeats"] // 2)):
                first["ours"].append(chromium_bench.first_load(
                    browser, f"{ours.url}/projects/{project}", ours=True)["drawn_s"])
                if theirs is not None:
                    first["theirs"].append(chromium_bench.first_load(
                        browser, f"{theirs.url}/?project={project}", ours=False)["drawn_s"])
            log("interaction: controls in place")
            timings = _controls(browser, f"{ours.url}/projects/{project}", cfg["repeats"])
            if not quick:
                log("interaction: the same views as full page loads")
                reloads = _reloads(browser, f"{ours.url}/projects/{project}", runs,
                                   max(1, cfg["repeats"] // 2))
    finally:
        ours.stop()
        if theirs is not None:
            theirs.stop()
    ours_first = statistics.median(first["ours"])
    theirs_first = statistics.median(first["theirs"]) if first["theirs"] else float("nan")
    lines = [f"### {NUMBER}. {TITLE}", "",
             f"{runs} runs × {metrics} metrics × {steps:,} steps, a 1400 × 1000 window; median of "
             f"{cfg['repeats']}. In place: from the input event to every chart on screen redrawn "
             "(the page's stats.apply), request included.", "",
             "| control | in place (ms) | full page load of that view (ms) |", "|---|---|---|"]
    for name, values in timings.items():
        reload = reloads.get(name)
        lines.append(f"| {name} | {statistics.median(values):,.0f} | "
                     f"{'—' if reload is None else f'{reload * 1000:,.0f}'} |")
    lines += ["", "| first screen of charts drawn | trackio_flask | trackio | trackio ÷ ours |",
              "|---|---|---|---|",
              f"| {runs}-run project | {ours_first:.2f} s | {theirs_first:.2f} s | "
              f"{theirs_first / ours_first:,.1f}× |" if first["theirs"] else
              f"| {runs}-run project | {ours_first:.2f} s | — (quick) | — |", ""]
    return "\n".join(lines)

