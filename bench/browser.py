"""Chromium measurements: first load until charts are drawn, hover/zoom/live-update response
times, and requests per minute of an idle tab."""

from __future__ import annotations

import time
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--host-resolver-rules=MAP *.hf.space 127.0.0.1"]

OURS_DRAWN = """() => {
  const panels = [...document.querySelectorAll('.panel')]
    .filter(p => p.getBoundingClientRect().top < window.innerHeight);
  return panels.length > 0 && panels.every(p => p.classList.contains('drawn'));
}"""
THEIRS_DRAWN = """() => {
  const embeds = [...document.querySelectorAll('.vega-embed')]
    .filter(e => e.getBoundingClientRect().top < window.innerHeight);
  return embeds.length > 0 && embeds.every(e => e.querySelector('canvas'));
}"""


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def first_load(browser, url: str, ours: bool) -> dict[str, float]:
    """Seconds until the first screen of charts is drawn, and bytes transferred until then."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    sizes: list[int] = []
    batch_done: list[float] = []

    def finished(request) -> None:
        try:
            sizes.append(request.sizes()["responseBodySize"])
        except Exception:
            return
        if "get_logs_batch" in request.url:
            batch_done.append(time.perf_counter())

    page.on("requestfinished", finished)
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(OURS_DRAWN if ours else THEIRS_DRAWN, timeout=120_000)
    if not ours:
        # Their plots exist before the data arrives; count until the batch came back and drew.
        while not batch_done and time.perf_counter() - started < 120:
            page.wait_for_timeout(20)
        page.wait_for_timeout(50)
    drawn = time.perf_counter() - started
    page.wait_for_timeout(300)
    context.close()
    return {"drawn_s": drawn, "bytes": float(sum(sizes))}


def requests_per_minute(browser, url: str, seconds: float, settle: float = 5.0) -> dict[str, float]:
    """Requests an open, visible, idle tab sends, per minute, after it settled."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    counted: list[str] = []
    page.goto(url)
    page.wait_for_timeout(settle * 1000)
    page.on("request", lambda request: counted.append(request.url))
    page.wait_for_timeout(seconds * 1000)
    context.close()
    return {"per_minute": len(counted) * 60.0 / seconds}


HOVER_MS = """async () => {
  // Pointer moves across the first line chart: time until the tooltip shows the new point.
  const entry = [...window.trackioFlask.views.values()].find(e => e.view && e.kind === 'line');
  if (!entry) return [];
  const canvas = entry.view.container().querySelector('canvas');
  const box = canvas.getBoundingClientRect(), [ox, oy] = entry.view.origin();
  // The page's hover readout (#readout) lists every run's value at the hovered step.
  const tip = () => { const el = document.getElementById('readout'); return el && !el.hidden ? el : null; };
  const times = [];
  for (let k = 0; k < 10; k++) {
    const before = tip() ? tip().innerHTML : '';
    const started = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', {bubbles: true,
      clientX: box.left + ox + (k + 1) * entry.view.width() / 12, clientY: box.top + oy + 100}));
    // A move that lands on the same step changes nothing: give up on it after 2 s, never hang.
    while ((!tip() || tip().innerHTML === before) && performance.now() - started < 2000)
      await new Promise(r => setTimeout(r, 1));
    if (tip() && tip().innerHTML !== before) times.push(performance.now() - started);
  }
  return times;
}"""

ZOOM_MS = """async () => {
  // Zoom every chart to the middle fifth of the first chart's x range, then back: ms until the
  // first chart on screen re-rendered, and until the last (the page script's own record).
  const tf = window.trackioFlask;
  const entry = [...tf.views.values()].find(e => e.view && e.kind === 'line');
  if (!entry) return [];
  const [lo, hi] = entry.view.scale('x').domain().map(Number);
  const out = [];
  for (const range of [[lo + (hi - lo) * 0.4, lo + (hi - lo) * 0.6], null]) {
    const seen = tf.stats.zoom.length;
    tf.setZoom(range);
    const started = performance.now();
    while (tf.stats.zoom.length === seen && performance.now() - started < 30000)
      await new Promise(r => setTimeout(r, 5));
    if (tf.stats.zoom.length > seen) out.push(tf.stats.zoom[seen]);
  }
  return out;
}"""


# Run `act` (a function's source, called with `arg`) on the open page and time, from just before
# it, the first visible change of the line charts on screen: per chart, the first frame whose
# canvas pixels differ from before (only canvases Vega cleared since the last frame are read, so
# the probe costs little), or whose chart was replaced by a newly drawn one. Then waits for the control's
# server-reconciled redraw (the page's stats.apply: input to every chart on screen redrawn
# from the answer). Returns {first, all, reconciled} in ms.
FIRST_CHANGE = """async arg => {
  const act = __ACT__;
  const tf = window.trackioFlask, stats = tf.stats.apply, count = stats.length;
  const frame = () => new Promise(r => requestAnimationFrame(() => r()));
  // The line charts on screen as the document has them (not as the script remembers them).
  const charts = [...document.querySelectorAll('#panels .panel[data-kind=line]')].filter(p => {
    const box = p.getBoundingClientRect();
    return box.bottom > 0 && box.top < innerHeight && p.querySelector('.chart canvas'); });
  const canvases = charts.map(p => p.querySelector('.chart canvas'));
  const dirty = new Set();
  const cleared = canvases.map((c, k) => {
    const g = c.getContext('2d'), clear = g.clearRect;
    g.clearRect = function (...a) { dirty.add(k); return clear.apply(this, a); };
    return [g, clear]; });
  // Settle first: three frames in a row in which no chart repainted (an earlier change's
  // redraw, a resize), so what changes next is this control's doing.
  for (let quiet = 0, waited = performance.now(); quiet < 3 && performance.now() - waited < 10000;) {
    dirty.clear(); await frame(); await new Promise(r => setTimeout(r, 20));
    quiet = dirty.size ? 0 : quiet + 1; }
  dirty.clear();
  const hash = c => {
    const d = new Uint32Array(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.buffer);
    let h = 0; for (let k = 0; k < d.length; k++) h = (Math.imul(h, 31) + d[k]) | 0; return h; };
  const replaced = k => { const e = tf.views.get(charts[k].id);
    return !canvases[k].isConnected && e && e.view && !e.fresh; };
  const before = canvases.map(hash), changed = canvases.map(() => null);
  const started = performance.now();
  act(arg);
  await new Promise(done => (function next() { requestAnimationFrame(() => {
    const at = performance.now() - started;
    canvases.forEach((c, k) => {
      if (changed[k] !== null) return;
      if ((dirty.has(k) && hash(c) !== before[k]) || replaced(k)) changed[k] = at; });
    dirty.clear();
    if (changed.every(v => v !== null) || at > 30000) done(); else next(); }); })());
  cleared.forEach(([g, clear]) => { g.clearRect = clear; });
  while (stats.length === count || window.trackioControls.busy()) await new Promise(r => setTimeout(r, 5));
  return {first: Math.min(...changed), all: Math.max(...changed), reconciled: stats[stats.length - 1].ms,
          charts: canvases.length};
}"""


def first_change(page, act: str, arg=None) -> dict[str, float]:
    """ms from a control's input to its first visible change and to its reconciled redraw."""
    return page.evaluate(FIRST_CHANGE.replace("__ACT__", act), arg)


def interactions(browser, url: str) -> dict[str, float]:
    """Hover (median) and zoom (worst of in and out) response times in ms, console messages."""
    import statistics

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(url)
    page.wait_for_function(OURS_DRAWN, timeout=120_000)
    hover = page.evaluate(HOVER_MS)
    zoom = page.evaluate(ZOOM_MS)
    context.close()
    nan = float("nan")
    return {"hover_ms": statistics.median(hover) if hover else nan,
            "zoom_first_chart_ms": max(z["first"] for z in zoom) if zoom else nan,
            "zoom_all_charts_ms": max(z["all"] for z in zoom) if zoom else nan,
            "console_messages": float(len(messages))}


def live_append(page, updates: int = 5, timeout_s: float = 120) -> dict[str, float]:
    """Cost of applying live updates to the open page's charts (ms per chart, median).

    Needs a writer appending to the project; reads the page script's own record of how long
    each refresh took from arrival to every changed chart re-rendered.
    """
    import statistics

    page.wait_for_function(f"() => window.trackioFlask.stats.delta.length >= {updates}",
                           timeout=timeout_s * 1000)
    records = page.evaluate("window.trackioFlask.stats.delta")[1:]  # the first one catches up
    per_chart = [r["ms"] / max(1, r["charts"]) for r in records]
    return {"ms_per_chart": statistics.median(per_chart), "charts": records[-1]["charts"]}
