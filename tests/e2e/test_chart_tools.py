"""Chart tools in real Chromium on a project logged by trackio's own client: full screen, CSV,
PNG and SVG downloads, plots per row, the device checklist and alert markers (live too)."""

from __future__ import annotations

import csv
import re
import shutil

import pytest
from trackio_zoo import HOSTILE, ZOO, log_more

from .waiting import wait_until

pytestmark = pytest.mark.browser
HOSTILE_ALERT = "loss spike " + HOSTILE

VIEW = """(metric) => {
  const panel = document.querySelector('.panel[data-metric="' + metric + '"]');
  const entry = panel && window.trackioFlask.views.get(panel.id);
  return entry && entry.view ? entry : null;
}"""
SIZE = """(metric) => {
  const panel = document.querySelector('.panel[data-metric="' + metric + '"]');
  const entry = window.trackioFlask.views.get(panel.id), box = panel.getBoundingClientRect();
  return {left: box.left, top: box.top, width: box.width, height: box.height,
          plotHeight: entry.view ? entry.view.height() : null,
          canvas: entry.view ? entry.view.container().querySelector('canvas').clientWidth : null,
          full: panel.classList.contains('fullscreen')};
}"""
# Page coordinates of an alert's triangle (its step, at the top of the plot).
ALERT_AT = """([metric, step]) => {
  const panel = document.querySelector('.panel[data-metric="' + metric + '"]');
  const view = window.trackioFlask.views.get(panel.id).view;
  const box = view.container().querySelector('canvas').getBoundingClientRect();
  const [ox, oy] = view.origin();
  return {x: box.left + ox + view.scale('x')(step), y: box.top + oy + 1};
}"""
LINE_NAMES = """(metric) => {
  const panel = document.querySelector('.panel[data-metric="' + metric + '"]');
  const view = window.trackioFlask.views.get(panel.id).view;
  const shown = window.trackioFlask.shown(window.trackioFlask.views.get(panel.id));
  const lines = new Set(view.data('pts').map(row => row.r));
  return shown.filter(s => lines.has(s.r)).map(s => s.n + ' · ' + s.d).sort();
}"""

# The dash patterns each device's lines are drawn with.
DASHES = """(metric) => {
  const panel = document.querySelector('.panel[data-metric="' + metric + '"]');
  const out = {};
  window.trackioFlask.views.get(panel.id).view.data('pts').forEach(row => {
    const device = row.r.split('\\x1f')[1];
    (out[device] = out[device] || new Set()).add(JSON.stringify(row.dash));
  });
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, [...v]]));
}"""


def open_zoo(page, server, query: str = "") -> None:
    page.goto(f"{server.url}/projects/{ZOO}{query}")
    wait_drawn(page)


def wait_drawn(page) -> None:
    page.wait_for_function("() => document.querySelectorAll('.panel').length > 0 && "
                           "[...document.querySelectorAll('.panel')]"
                           ".every(p => p.classList.contains('drawn'))")


def panel(page, metric: str):
    return page.locator(f'.panel[data-metric="{metric}"]')


def assert_inert(page) -> None:
    assert page.dialogs == []
    assert page.evaluate("() => window.pwned === undefined")
    errors = [m for m in page.console_messages if m.startswith(("error", "pageerror"))]
    assert errors == []


def test_full_screen_fills_the_window_and_escape_exits(page, start_server, zoo_dir):
    open_zoo(page, start_server(zoo_dir))
    before = page.evaluate(SIZE, "train/loss")
    panel(page, "train/loss").locator("[data-tool=fullscreen]").click()
    full = wait_until(page, lambda: (lambda s: s if s["full"] and s["plotHeight"] > 600
                                     and s["canvas"] > 1200 else None)(
        page.evaluate(SIZE, "train/loss")), "the chart redrawn at full-screen size")
    assert full["left"] == 0 and full["top"] == 0 and full["width"] == 1400
    page.keyboard.press("Escape")
    after = wait_until(page, lambda: (lambda s: s if not s["full"]
                                      and s["plotHeight"] == before["plotHeight"]
                                      and s["canvas"] < 700 else None)(
        page.evaluate(SIZE, "train/loss")), "the chart back in its grid cell")
    assert after["width"] == before["width"] and after["canvas"] == before["canvas"]
    # The button exits as well.
    button = panel(page, "eval/acc").locator("[data-tool=fullscreen]")
    button.click()
    wait_until(page, lambda: page.evaluate(SIZE, "eval/acc")["full"], "full screen")
    assert button.get_attribute("aria-pressed") == "true"
    button.click()
    wait_until(page, lambda: not page.evaluate(SIZE, "eval/acc")["full"], "full screen left")
    assert_inert(page)


def download(page, metric: str, tool: str):
    menu = panel(page, metric).locator("details.tool-menu")
    menu.locator("summary").click()
    with page.expect_download() as info:
        menu.locator(f"[data-tool={tool}]").click()
    return info.value


def test_csv_download_has_every_row_the_chart_shows(page, start_server, zoo_dir):
    open_zoo(page, start_server(zoo_dir))
    for tool in ("csv", "csv-raw"):
        got = download(page, "train/loss", tool)
        assert got.suggested_filename == ("train_loss.csv" if tool == "csv" else "train_loss-raw.csv")
        with open(got.path(), newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["run", "step", "time", "value"]
        assert len(rows) == 1 + 3 * 30  # three runs of 30 steps, few enough to draw them all
        assert {row[0] for row in rows[1:]} == {"alpha", "beta", HOSTILE}
        values = {(row[0], row[1]): row[3] for row in rows[1:]}
        assert values["alpha", "29"] == repr(1 / 30) and values[HOSTILE, "0"] == "3"
    assert_inert(page)


def test_png_and_svg_downloads_are_images_of_the_chart(page, start_server, zoo_dir):
    open_zoo(page, start_server(zoo_dir))
    png = download(page, "train/loss", "png")
    assert png.suggested_filename == "train_loss.png"
    with open(png.path(), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    svg = download(page, "train/loss", "svg")
    assert svg.suggested_filename == "train_loss.svg"
    with open(svg.path(), encoding="utf-8") as handle:
        text = handle.read()
    assert text.startswith("<svg") and "<path" in text
    assert_inert(page)


def test_plots_per_row_changes_the_grid_and_stays_in_the_url(page, start_server, zoo_dir):
    open_zoo(page, start_server(zoo_dir))
    memory, utilisation = "memory", "utilization"
    side_by_side = page.evaluate(SIZE, memory)["top"] == page.evaluate(SIZE, utilisation)["top"]
    assert side_by_side  # the default fits several per row
    page.select_option("select[name=cols]", "1")
    page.wait_for_url("**cols=1**")
    wait_drawn(page)
    one, two = page.evaluate(SIZE, memory), page.evaluate(SIZE, utilisation)
    assert two["top"] > one["top"] + one["height"] - 1 and one["left"] == two["left"]
    main_width = page.evaluate("() => document.querySelector('.grid').clientWidth")
    assert one["width"] >= main_width - 2
    assert page.input_value("select[name=cols]") == "1"
    assert_inert(page)


def test_controls_work_with_the_sidebar_hidden(page, start_server, zoo_dir):
    open_zoo(page, start_server(zoo_dir), "?sidebar=hidden")
    page.select_option("select[name=cols]", "2")
    page.wait_for_url("**cols=2**")
    wait_drawn(page)
    page.get_by_label("GPU 0").uncheck()
    page.wait_for_url(re.compile(r".*device=gpu(%2F|/)1"))
    wait_drawn(page)
    assert "sidebar=hidden" in page.url and "cols=2" in page.url
    assert page.locator(".grid.per-row").count() > 0
    assert all("GPU 1" in name for name in page.evaluate(LINE_NAMES, "utilization"))
    assert_inert(page)


def test_device_checklist_hides_gpu_1_lines(page, start_server, zoo_dir):
    open_zoo(page, start_server(zoo_dir))
    names = page.evaluate(LINE_NAMES, "utilization")
    assert len(names) == 6 and sum("GPU 1" in name for name in names) == 3
    dashes = page.evaluate(DASHES, "utilization")
    assert len(dashes["gpu/0"]) == len(dashes["gpu/1"]) == 1 and dashes["gpu/0"] != dashes["gpu/1"]
    page.get_by_label("GPU 1").uncheck()
    page.wait_for_url(re.compile(r".*device=gpu(%2F|/)0"))
    wait_drawn(page)
    names = page.evaluate(LINE_NAMES, "utilization")
    assert names == sorted(f"{run} · GPU 0" for run in ("alpha", "beta", HOSTILE))
    assert not page.get_by_label("GPU 1").is_checked() and page.get_by_label("GPU 0").is_checked()
    # The hostile run name is text in the legend-less tooltip data, never markup.
    assert page.locator(".panel img").count() == 0
    assert_inert(page)


def hover_alert(page, metric: str, step: float) -> str:
    at = page.evaluate(ALERT_AT, [metric, step])
    page.mouse.move(at["x"] - 30, at["y"] + 60)
    page.mouse.move(at["x"], at["y"], steps=4)
    return page.wait_for_selector("#readout:not([hidden])")


def test_alert_marker_tooltip_shows_the_title_as_text(page, start_server, zoo_dir):
    open_zoo(page, start_server(zoo_dir))
    entry_alerts = page.evaluate("() => window.trackioFlask.alerts().map(a => [a.x, a.title])")
    assert [12, HOSTILE_ALERT] in entry_alerts
    tooltip = hover_alert(page, "train/loss", 12)
    text = tooltip.inner_text()
    assert HOSTILE_ALERT in text and "step" in text
    assert text.count("loss spike") == 3  # alpha's, beta's and the hostile run's, one step
    assert tooltip.query_selector("img") is None
    assert_inert(page)


def test_a_new_alert_appears_on_an_open_page_without_reload(page, start_server, zoo_dir, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(zoo_dir, live)
    open_zoo(page, start_server(live))
    page.evaluate("() => { window.sameDocument = true; }")
    log_more(live, "trackio.log({'train/loss': 0.5}, step=31)\n"
                   "trackio.alert('late alert', level=trackio.AlertLevel.ERROR)")
    late = wait_until(page, lambda: page.evaluate(
        "() => window.trackioFlask.alerts().filter(a => a.title === 'late alert')"),
        "the new alert to arrive with a refresh")
    step = late[0]["x"]
    drawn = wait_until(page, lambda: page.evaluate(
        """(metric) => { const panel = document.querySelector('.panel[data-metric="' + metric + '"]');
             const view = window.trackioFlask.views.get(panel.id).view;
             return view.data('alrt').some(a => a.title === 'late alert')
               && view.scale('x').domain()[1] >= 31; }""", "train/loss"),
        "the new marker drawn on the loss chart")
    assert drawn and page.evaluate("() => window.sameDocument === true")
    tooltip = hover_alert(page, "train/loss", step)
    assert "late alert" in tooltip.inner_text()
    assert_inert(page)
