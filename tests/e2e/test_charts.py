"""Charts in real Chromium: what a downsampled chart shows, zooming to full resolution, markers
for NaN/Inf, the tooltip, polite zoom requests and a quiet console."""

from __future__ import annotations

import math
import re
import time

import pytest
from builders import ProjectDB

from .waiting import wait_until

pytestmark = pytest.mark.browser
STEPS = 20_000

# A panel's state: its rows by dataset, the badge, and the x domain.
STATE = """(id) => {
  const entry = window.trackioFlask.views.get(id);
  if (!entry || !entry.view) return null;
  const view = entry.view, badge = entry.panel.querySelector('.points-badge');
  const rows = name => view.data(name).map(r => ({...r}));
  return {pts: rows('pts'), band: rows('band'), bad: rows('bad'),
          badge: badge.hidden ? null : badge.textContent, domain: view.scale('x').domain()};
}"""

# Page coordinates of a data point (x, y in data units) of a drawn panel.
POINT = """([id, x, y]) => {
  const view = window.trackioFlask.views.get(id).view;
  const box = view.container().querySelector('canvas').getBoundingClientRect();
  const [ox, oy] = view.origin();
  return {x: box.left + ox + view.scale('x')(x), y: box.top + oy + view.scale('y')(y),
          top: box.top + oy, height: view.height()};
}"""


def wait_drawn(page):
    page.wait_for_function("() => document.querySelectorAll('.panel').length > 0 && "
                           "[...document.querySelectorAll('.panel')]"
                           ".every(p => p.classList.contains('drawn'))")


def loss(step: int):
    """A wavy loss with two spikes inside one pixel column, and NaN/±Inf at known steps."""
    if step == 10_001:
        return 5.0
    if step == 10_003:
        return 4.0
    return {500: "NaN", 600: "Infinity", 700: "-Infinity"}.get(
        step, 1.0 + 0.1 * math.sin(step / 50))


@pytest.fixture
def long_run(data_dir):
    db = ProjectDB(data_dir / "long.db")
    db.log_many("solo", range(STEPS), lambda step: {"loss": loss(step)})
    db.close()
    return data_dir


def console(page):
    """Everything the page logged (warnings included), and its errors."""
    return list(page.console_messages)


def panel_id(page) -> str:
    return page.get_attribute(".panel", "id")


def brush(page, pid, x0, x1):
    """Drag across a chart from data x0 to x1 (mid-height), as a person zooms."""
    a = page.evaluate(POINT, [pid, x0, 1.0])
    b = page.evaluate(POINT, [pid, x1, 1.0])
    y = a["top"] + a["height"] / 2
    page.mouse.move(a["x"], y)
    page.mouse.down()
    page.mouse.move(b["x"], y, steps=6)
    page.mouse.up()


def test_downsampled_chart_shows_band_and_badge_and_zoom_brings_the_hidden_spike(
        page, start_server, long_run):
    server = start_server(long_run)
    page.goto(server.url + "/projects/long")
    wait_drawn(page)
    pid = panel_id(page)
    before = page.evaluate(STATE, pid)
    drawn = len(before["pts"])
    assert 100 < drawn <= 257  # a bucket per assumed pixel, and the first point
    assert before["badge"] == f"{drawn} of {STEPS - 3:,} points"
    # The spikes are inside one pixel column: the line passes them by, the band holds them.
    assert max(r["y"] for r in before["pts"]) < 2
    assert max(r["hi"] for r in before["band"]) == 5.0
    assert all(r["lo"] <= r["y"] <= r["hi"] for r in before["band"])

    # A person zooms in twice: a 100-step range is too narrow to drag across at first.
    brush(page, pid, 8_000, 12_000)
    page.wait_for_function("() => window.trackioFlask.zoom() !== null")
    wait_until(page, lambda: page.evaluate(STATE, pid)["domain"][0] > 7_000, "the first zoom")
    brush(page, pid, 9_950, 10_050)
    zoomed = wait_until(page, lambda: (lambda s: s if any(r["y"] == 5.0 for r in s["pts"])
                                       else None)(page.evaluate(STATE, pid)),
                        "the zoomed range at full resolution")
    ys = {r["x"]: r["y"] for r in zoomed["pts"]}
    assert ys[10_001] == 5.0 and ys[10_003] == 4.0  # both spikes, at their own steps
    lo, hi = page.evaluate("window.trackioFlask.zoom()")
    inside = [x for x in ys if lo <= x <= hi]
    assert inside == list(range(math.ceil(lo), math.floor(hi) + 1))  # every step in range
    assert zoomed["badge"] is None  # nothing left out any more
    assert [round(v) for v in zoomed["domain"]] == [round(lo), round(hi)]
    assert len(server.requests(r"/series\?")) == 2  # one request per zoom, for every panel
    assert "xmin=" in page.url

    page.click("#reset-zoom")
    wait_until(page, lambda: len(page.evaluate(STATE, pid)["pts"]) == drawn, "the overview again")
    assert page.evaluate("window.trackioFlask.zoom()") is None
    # Zooming back into a range seen before is answered from the page's memory.
    brush(page, pid, 8_000, 12_000)
    wait_until(page, lambda: page.evaluate(STATE, pid)["domain"][0] > 7_000, "the zoom again")
    assert len(server.requests(r"/series\?")) == 2
    assert console(page) == []


def test_nan_and_inf_are_marked_at_their_steps_on_the_x_axis(page, start_server, long_run):
    server = start_server(long_run)
    page.goto(server.url + "/projects/long")
    wait_drawn(page)
    pid = panel_id(page)
    marks = sorted((r["x"], r["v"]) for r in page.evaluate(STATE, pid)["bad"])
    assert marks == [(500, "NaN"), (600, "+Inf"), (700, "-Inf")]
    # Drawn on the x-axis line, and their tooltip names run, step and value.
    spot = page.evaluate(POINT, [pid, 500, 1.0])
    page.mouse.move(spot["x"], spot["top"] + spot["height"] - 5)
    tooltip = page.wait_for_selector("#readout:not([hidden])")
    text = tooltip.inner_text()
    assert "solo" in text and "500" in text and "NaN" in text
    assert console(page) == []


def test_tooltip_names_run_step_value_and_smoothed_value(page, start_server, data_dir):
    db = ProjectDB(data_dir / "tip.db")
    db.log_many("alpha-run", range(100), lambda step: {"train/loss": 1 / (step + 1)})
    db.close()
    server = start_server(data_dir)
    page.goto(server.url + "/projects/tip?smoothing=10")
    wait_drawn(page)
    pid = panel_id(page)
    smoothed = page.evaluate("id => window.trackioFlask.shown("
                             "window.trackioFlask.views.get(id))[0].s[50]", pid)
    spot = page.evaluate(POINT, [pid, 50, smoothed])
    page.mouse.move(spot["x"] - 20, spot["y"] - 20)
    started = time.monotonic()
    page.mouse.move(spot["x"], spot["y"], steps=3)
    text = page.wait_for_selector("#readout:not([hidden])").inner_text()
    assert time.monotonic() - started < 5  # generous: the target is 100 ms on a quiet machine
    assert "alpha-run" in text and "step 50" in text
    # The smoothed value first, the logged one beside it.
    shown = float(page.inner_text("#readout .readout-value"))
    raw = float(page.inner_text("#readout .readout-extra").split("raw ")[1].split(",")[0])
    assert shown == pytest.approx(smoothed, rel=1e-5) and raw == pytest.approx(1 / 51, rel=1e-5)
    assert "undefined" not in text
    # The hovered point is marked on the chart.
    assert page.evaluate("id => window.trackioFlask.views.get(id).view.data('hov').length", pid) == 1
    assert console(page) == []


def test_zoom_request_honours_retry_after_like_the_poller(page, start_server, long_run):
    server = start_server(long_run)
    sent = []

    def handle(route):
        sent.append(time.time())
        if len(sent) == 1:
            route.fulfill(status=429, body="RATE LIMITED BODY", headers={"Retry-After": "2",
                                                                "Cache-Control": "no-store"})
        else:
            route.continue_()

    page.goto(server.url + "/projects/long")
    wait_drawn(page)
    pid = panel_id(page)
    page.route(re.compile(r".*/series\?.*"), handle)
    brush(page, pid, 9_800, 10_200)
    page.wait_for_selector("#poll-notice:not([hidden])")
    assert "paused" in page.inner_text("#poll-notice")
    polls_at_pause = server.count()
    # The zoom is asked again by itself once the pause is over, and then drawn.
    wait_until(page, lambda: any(r["y"] == 5.0 for r in page.evaluate(STATE, pid)["pts"]),
               "the zoom after the pause")
    assert len(sent) == 2 and sent[1] - sent[0] >= 1.9, sent
    # No poll went out during the pause either (one pause for the whole page).
    assert all(r.at >= sent[0] + 1.9 for r in server.requests()[polls_at_pause:])
    assert "RATE LIMITED BODY" not in page.content()


def test_console_stays_empty_through_views_zoom_and_hover(page, start_server, long_run):
    server = start_server(long_run)
    for query in ("", "?smoothing=20", "?log_y=1", "?x_axis=time", "?smoothing=5&smoother=ema"):
        page.goto(server.url + "/projects/long" + query)
        wait_drawn(page)
        pid = panel_id(page)
        spot = page.evaluate(POINT, [pid, 15_000, 1.0])
        page.mouse.move(spot["x"], spot["top"] + spot["height"] / 2, steps=4)
        domain = page.evaluate(STATE, pid)["domain"]
        brush(page, pid, domain[0] + (domain[1] - domain[0]) * 0.4,
              domain[0] + (domain[1] - domain[0]) * 0.6)
        page.wait_for_function("() => window.trackioFlask.zoom() !== null")
        page.dblclick(f"#{pid} canvas")
        page.wait_for_function("() => window.trackioFlask.zoom() === null")
    assert console(page) == []
