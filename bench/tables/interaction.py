"""Touching the page: how long a control takes, in Chromium on the 8-run project (issue 23's
target: 150 ms for a run tick or a smoothing step), from the input to its first visible change
(the page previews it from the data it holds) and to the server-reconciled redraw, beside a
full page load of the same view (what a control cost when it reloaded the page), and the first
screen of charts beside trackio's in the same run.

Each control is used `repeats` times on one open page. The first visible change is read from
the charts' canvases (bench/browser.py FIRST_CHANGE: first frame whose pixels differ, per
chart on screen); the reconciled redraw is the page's own record (stats.apply: input to every
chart on screen redrawn from the answer). Legend clicks and the theme switch, which send no
request, are timed from the click to the charts' next painted frame.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from .. import browser as chromium_bench
from ..datasets import METRICS, SIZES, copy, source_project
from ..measure import Http
from ..procs import start_ours, start_theirs

NUMBER = 23
TITLE = "Touching the page: control to redraw (Chromium)"
FULL = {"size": SIZES[0], "repeats": 5}
# Quick keeps the 8-run project (the target is set on it; it builds in seconds) with fewer repeats.
QUICK = {"size": (8, 5000, METRICS), "repeats": 3}

# In-place controls, made the way a user makes them (the events the page listens to), on
# repetition `n`. A run is unticked, then ticked back (the page still holds its lines); the
# smoothing steps from 10 (warmed up first: turning it on changes the charts' shape).
SMOOTH_TO = """v => { const range = document.getElementById('smoothing');
  range.focus(); range.value = String(v);
  range.dispatchEvent(new Event('input', {bubbles: true}));
  range.dispatchEvent(new Event('change', {bubbles: true})); }"""
CONTROLS = {
    "run untick (one run off)": ("() => document.querySelectorAll('#run-list input[type=checkbox]')[1]"
                                 ".click()", lambda n: None),
    "run tick (the same run back on)": ("() => document.querySelectorAll('#run-list "
                                        "input[type=checkbox]')[1].click()", lambda n: None),
    "smoothing step (arrow key)": (SMOOTH_TO, lambda n: 11 + n),
    "smoothing off ↔ on (0 ↔ 10)": (SMOOTH_TO, lambda n: 0 if n % 2 == 0 else 10),
    "x-axis (step ↔ relative time)": ("""n => { const select = document.querySelector('select[name=x_axis]');
      select.value = n % 2 ? 'step' : 'time';
      select.dispatchEvent(new Event('change', {bubbles: true})); }""", lambda n: n),
    "log y on/off": ("() => document.querySelector('input[name=log_y]').click()", lambda n: None),
}
ORDER = [["run untick (one run off)", "run tick (the same run back on)"],
         ["smoothing step (arrow key)"], ["smoothing off ↔ on (0 ↔ 10)"],
         ["x-axis (step ↔ relative time)"], ["log y on/off"]]
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


def _controls(browser, url: str, repeats: int) -> dict[str, list[dict[str, float]]]:
    """Per control: {first, all, reconciled} ms from the input, once per repetition."""
    context, page = _page(browser, url)
    timings: dict[str, list] = {name: [] for name in CONTROLS}
    try:
        for group in ORDER:
            if group == ["smoothing step (arrow key)"]:
                chromium_bench.first_change(page, SMOOTH_TO, 10)  # warm-up: smoothing on
            for n in range(repeats):
                for name in group:
                    act, arg = CONTROLS[name]
                    timings[name].append(chromium_bench.first_change(page, act, arg(n)))
        timings["legend click (only one run)"] = [page.evaluate(LEGEND, n) for n in range(repeats)]
        timings["theme switch"] = [page.evaluate(THEME) for _ in range(repeats)]
    finally:
        context.close()
    return timings


def _reloads(browser, base: str, runs: int, repeats: int) -> dict[str, float]:
    """Seconds for a full page load of the view each control leads to (the old behaviour)."""
    # datasets.build names runs run000, run001, …: the first one ticked off.
    others = ",".join(f"run{n:03d}" for n in range(1, runs))
    views = {"run untick (one run off)": f"?sel=some&run_ids={others}",
             "smoothing step (arrow key)": "?smoothing=11",
             "smoothing off ↔ on (0 ↔ 10)": "?smoothing=10",
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
    load_before = os.getloadavg()[0]
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
             f"{cfg['repeats']}, in ms from the input event. First visible change: the first "
             "frame in which a chart on screen differs (the page's preview, drawn from the data "
             "it holds), and the frame by which every chart on screen did; reconciled: every "
             "chart on screen redrawn from the server's answer (request included). Load average "
             f"(1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after.", "",
             "| control | first chart changed | every chart on screen changed | "
             "server-reconciled | full page load of that view |", "|---|---|---|---|---|"]
    for name, values in timings.items():
        reload = reloads.get(name)
        reload_text = "—" if reload is None else f"{reload * 1000:,.0f}"
        if values and isinstance(values[0], dict):
            first_ms, all_ms, done_ms = (statistics.median(v[k] for v in values)
                                         for k in ("first", "all", "reconciled"))
            lines.append(f"| {name} | {first_ms:,.0f} | {all_ms:,.0f} | {done_ms:,.0f} | "
                         f"{reload_text} |")
        else:  # no request: the click to the next painted frame
            ms = statistics.median(values)
            lines.append(f"| {name} | {ms:,.0f} | {ms:,.0f} | — (no request) | {reload_text} |")
    lines += ["", "| first screen of charts drawn | trackio_flask | trackio | trackio ÷ ours |",
              "|---|---|---|---|",
              f"| {runs}-run project | {ours_first:.2f} s | {theirs_first:.2f} s | "
              f"{theirs_first / ours_first:,.1f}× |" if first["theirs"] else
              f"| {runs}-run project | {ours_first:.2f} s | — (quick) | — |", ""]
    return "\n".join(lines)

