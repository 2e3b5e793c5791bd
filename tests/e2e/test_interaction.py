"""Touching the page, in real Chromium against gunicorn: controls applied in place (same document,
same scroll, one request per change, back/forward), legends, the hover readout and crosshair,
exports, full screen at full resolution, the theme switch and state carried across tabs."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from builders import ProjectDB

from .waiting import wait_until

pytestmark = pytest.mark.browser
RUNS = [f"run-{n}" for n in range(8)]
METRICS = [f"train/m{n}" for n in range(6)] + ["eval/acc", "eval/loss"]
LONG_STEPS = 20_000


@pytest.fixture
def eight(data_dir):
    """Project `eight`: 8 runs × 8 metrics × 300 steps, and two GPUs' system metrics per run."""
    db = ProjectDB(data_dir / "eight.db")
    for n, run in enumerate(RUNS):
        db.config(run, {"lr": 10.0 ** -(n % 4), "seed": n})
        db.log_many(run, range(300), lambda step, n=n: {
            name: math.exp(-step / (50 + 10 * m)) + 0.1 * n + 0.01 * math.sin(step)
            for m, name in enumerate(METRICS)})
        for second in range(0, 300, 10):
            db.system(run, second, {"gpu/0/utilization": 50.0 + n, "gpu/1/utilization": 30.0 + n})
    db.close()
    return data_dir


@pytest.fixture
def long_project(data_dir):
    db = ProjectDB(data_dir / "long.db")
    db.log_many("solo", range(LONG_STEPS), lambda step: {"loss": 1.0 + 0.1 * math.sin(step / 50)})
    db.close()
    return data_dir


def wait_drawn(page) -> None:
    page.wait_for_function("() => document.querySelectorAll('.panel').length > 0 && "
                           "[...document.querySelectorAll('.panel')]"
                           ".every(p => p.classList.contains('drawn'))")


def open_page(page, server, path: str) -> None:
    page.goto(server.url + path)
    wait_drawn(page)


def applied(page) -> int:
    return page.evaluate("window.trackioFlask.stats.apply.length")


def wait_applied(page, count: int) -> None:
    wait_until(page, lambda: applied(page) >= count and
               not page.evaluate("window.trackioControls.busy()"), f"{count} applied changes")


def panel_id(page, metric: str) -> str:
    return page.evaluate("m => document.querySelector(`.panel[data-metric=\"${m}\"]`).id", metric)


def drawn_runs(page, metric: str) -> list[str]:
    return page.evaluate("""m => {
      const panel = document.querySelector(`.panel[data-metric="${m}"]`);
      const view = window.trackioFlask.views.get(panel.id).view;
      return [...new Set(view.data('pts').map(r => r.n))].sort();
    }""", metric)


def apply_requests(server) -> list:
    """Control changes: refresh requests without a version (a poll always carries `v`)."""
    return [r for r in server.requests(r"/refresh\?") if not re.search(r"[?&]v=", r.line)]


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query, keep_blank_values=True)


def test_run_tick_redraws_in_place_keeping_document_scroll_and_views(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    page.evaluate("window.__same_document = true")
    kept = page.evaluate("id => { window.__view = window.trackioFlask.views.get(id).view; "
                         "return true; }", panel_id(page, "eval/loss"))
    page.mouse.wheel(0, 700)
    wait_until(page, lambda: page.evaluate("scrollY") > 300, "the page to scroll")
    scrolled = page.evaluate("scrollY")
    page.locator("#run-list input[type=checkbox][value='id-run-3']").click()
    wait_applied(page, 1)
    assert page.evaluate("window.__same_document") is True
    assert abs(page.evaluate("scrollY") - scrolled) <= 2
    assert drawn_runs(page, "eval/loss") == sorted(set(RUNS) - {"run-3"})
    # The chart is the same Vega view, given the new data (no redraw from its spec).
    assert kept and page.evaluate("id => window.trackioFlask.views.get(id).view === window.__view",
                                  panel_id(page, "eval/loss"))
    # The selection rides as a short token (trackio_flask/selection.py): all but run-3, the
    # fourth run in creation order.
    assert "run_ids" not in query(page) and query(page)["sel"][0].endswith("_3")
    assert len(apply_requests(server)) == 1
    # The poller now polls the new view: one poller, and it carries the new selection.
    assert page.locator("[data-poll]").count() == 1
    assert query(page)["sel"][0] in page.get_attribute("#poller", "hx-get")


def test_smoothing_arrow_keys_collapse_into_fewer_requests(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    page.evaluate("window.__same_document = true")
    page.focus("#smoothing")
    for _ in range(8):
        page.keyboard.press("ArrowRight")
    wait_until(page, lambda: query(page).get("smoothing") == ["8"] and
               not page.evaluate("window.trackioControls.busy()"), "smoothing 8 applied")
    assert len(apply_requests(server)) < 8, apply_requests(server)
    assert page.inner_text("output[for=smoothing]") == "8"
    wait_until(page, lambda: page.evaluate(
        "id => (window.trackioFlask.views.get(id).view.data('pts')[0] || {}).s !== undefined",
        panel_id(page, "eval/loss")), "smoothed lines")
    assert page.evaluate("window.__same_document") is True


def test_back_and_forward_restore_views_in_place(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    page.evaluate("window.__same_document = true")
    page.select_option("select[name=x_axis]", "time")
    wait_applied(page, 1)
    page.locator("#run-list input[value='id-run-0']").click()
    wait_applied(page, 2)
    assert query(page)["x_axis"] == ["time"] and query(page)["sel"][0].endswith("_0")
    page.go_back()
    wait_until(page, lambda: "sel" not in query(page) and
               page.locator("#run-list input[value='id-run-0']").is_checked(), "back")
    wait_until(page, lambda: drawn_runs(page, "eval/loss") == RUNS, "all runs drawn again")
    assert page.input_value("select[name=x_axis]") == "time"
    page.go_back()
    wait_until(page, lambda: page.input_value("select[name=x_axis]") == "step", "back to step")
    page.go_forward()
    wait_until(page, lambda: page.input_value("select[name=x_axis]") == "time", "forward")
    assert page.evaluate("window.__same_document") is True
    assert page.locator("[data-poll]").count() == 1


def test_legend_names_runs_isolates_on_click_and_highlights_on_hover(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    pid = panel_id(page, "eval/acc")
    legend = page.locator(f"#{pid} .legend-item")
    assert sorted(legend.all_inner_texts()) == RUNS
    page.locator(f"#{pid} .legend-item", has_text="run-5").click()
    wait_until(page, lambda: drawn_runs(page, "eval/acc") == ["run-5"], "only run-5")
    assert page.get_attribute(f"#{pid} .legend-item[data-run='id-run-5']", "aria-pressed") == "true"
    assert drawn_runs(page, "eval/loss") == RUNS  # the other charts keep every run
    page.locator(f"#{pid} .legend-item", has_text="run-5").press("Enter")  # keyboard, again: all
    wait_until(page, lambda: drawn_runs(page, "eval/acc") == RUNS, "every run again")
    page.locator(f"#{pid} .legend-item", has_text="run-2").hover()
    wait_until(page, lambda: page.evaluate(
        "id => { const v = window.trackioFlask.views.get(id).view; "
        "return v.signal('dim') < 1 && [...new Set(v.data('hil').map(r => r.n))].join() === 'run-2'; }",
        pid), "run-2 highlighted")


def test_dashed_device_lines_are_explained_in_the_legend(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    legend = page.locator(".panel[data-metric='utilization'] .legend-device")
    assert legend.all_inner_texts() == ["GPU 0 (dash)", "GPU 1 (dash)"]
    dashes = legend.locator("line").evaluate_all("ls => ls.map(l => l.getAttribute('stroke-dasharray'))")
    assert len(set(dashes)) == 2


def test_hover_readout_lists_every_run_sorted_with_a_crosshair_on_every_chart(page, start_server,
                                                                             eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    pid = panel_id(page, "eval/acc")
    spot = page.evaluate("""id => {
      const panel = document.getElementById(id);
      panel.scrollIntoView({block: 'center', behavior: 'instant'});
      const view = window.trackioFlask.views.get(id).view;
      const box = view.container().querySelector('canvas').getBoundingClientRect();
      const [ox, oy] = view.origin();
      return {x: box.left + ox + view.scale('x')(150), y: box.top + oy + view.height() / 2};
    }""", pid)
    page.mouse.move(spot["x"] - 30, spot["y"])
    page.mouse.move(spot["x"], spot["y"], steps=3)
    readout = page.wait_for_selector("#readout:not([hidden])")
    wait_until(page, lambda: "step 150" in readout.inner_text(), "the readout at step 150")
    names = page.locator("#readout .readout-name").all_inner_texts()
    values = [float(v) for v in page.locator("#readout .readout-value").all_inner_texts()]
    assert sorted(names) == RUNS and values == sorted(values, reverse=True)
    assert names[0] == "run-7"  # the largest value first
    # Every other step chart on screen shows the crosshair at the same step.
    crossed = page.evaluate("""() => [...window.trackioFlask.views.values()]
      .filter(e => e.view && e.kind === 'line' && e.shape.startsWith('line-step'))
      .map(e => e.view.data('cross').map(r => r.x))""")
    assert crossed.count([150]) >= 2
    page.mouse.move(5, 5)
    page.wait_for_selector("#readout", state="hidden")


def test_chart_keyboard_walks_the_crosshair(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    chart = page.locator(f"#{panel_id(page, 'eval/acc')} .chart")
    chart.focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    wait_until(page, lambda: "step 1" in page.inner_text("#readout"), "the readout at step 1")
    assert page.locator("#readout .readout-row").count() == len(RUNS)


def test_axis_titles_name_the_metric_and_a_metric_x_axis(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight?x_axis=eval/acc")
    view = "id => window.trackioFlask.views.get(id).view"
    pid = panel_id(page, "train/m0")
    assert page.evaluate(f"id => ({view})(id).signal('ytitle')", pid) == "m0"
    assert page.evaluate(f"id => ({view})(id).signal('xtitle')", pid) == "eval/acc"


def decode_png(data: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGBA")


@pytest.mark.parametrize("theme,background", [("light", (255, 255, 255)), ("dark", (24, 24, 27))])
def test_exports_carry_title_legend_and_the_theme_background(page, start_server, eight, theme,
                                                             background):
    server = start_server(eight)
    open_page(page, server, f"/projects/eight?__theme={theme}")
    pid = panel_id(page, "eval/acc")
    files = {}
    for kind in ("png", "svg"):
        page.locator(f"#{pid} summary.tool").click()
        with page.expect_download() as download:
            page.locator(f"#{pid} [data-tool={kind}]").click()
        files[kind] = Path(download.value.path()).read_bytes()
        assert download.value.suggested_filename == f"eval_acc.{kind}"
    svg = files["svg"].decode()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "eval/acc" in texts and "acc" in texts and "step" in texts  # title, y and x axis
    assert set(RUNS) <= set(texts)  # the legend
    assert re.search(r'<rect[^>]*fill="rgb\({}, {}, {}\)"'.format(*background), svg), svg[:400]
    image = decode_png(files["png"])
    assert image.getpixel((2, 2)) == (*background, 255)  # solid, not transparent
    width, height = image.size
    # The title's ink in the top band, the legend's swatches in the bottom band.
    top = {image.getpixel((x, y))[:3] for x in range(0, width // 2, 2) for y in range(0, 60)}
    assert len(top) > 3
    colours = {image.getpixel((x, y))[:3] for x in range(0, width, 2) for y in range(height - 60, height)}
    assert (31, 119, 180) in colours or len(colours) > 8


def test_full_screen_asks_for_the_screens_resolution(page, start_server, long_project):
    server = start_server(long_project)
    open_page(page, server, "/projects/long")
    pid = panel_id(page, "loss")
    overview = page.evaluate("id => window.trackioFlask.views.get(id).view.data('pts').length", pid)
    page.click(f"#{pid} [data-tool=fullscreen]")
    page.wait_for_selector(f"#{pid}[data-resolution=full]")
    full = page.evaluate("id => window.trackioFlask.views.get(id).view.data('pts').length", pid)
    assert full > 2 * overview
    asked = [r.line for r in server.requests(r"/series\?")]
    assert len(asked) == 1 and f"panel={pid}" in asked[0] and "width=" in asked[0]
    # The title and legend stay in full screen, on the theme's solid background.
    assert page.is_visible(f"#{pid} .panel-title") and page.is_visible(f"#{pid} .legend")
    page.keyboard.press("Escape")
    wait_until(page, lambda: page.evaluate(
        "id => window.trackioFlask.views.get(id).view.data('pts').length", pid) == overview,
        "the overview again")


def test_theme_switch_is_remembered_without_a_flash_and_the_address_theme_wins(
        page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    page.click("#theme-toggle")
    wait_until(page, lambda: page.get_attribute("html", "data-theme") == "dark", "dark")
    wait_drawn(page)
    # On the next page the stored choice is on <html> before <body> exists (no light flash).
    page.add_init_script("""new MutationObserver((changes, observer) => {
      if (document.body) { window.__first = document.documentElement.dataset.theme; observer.disconnect(); }
    }).observe(document, {childList: true, subtree: true});""")
    page.goto(server.url + "/projects/eight/reports")
    assert page.evaluate("window.__first") == "dark"
    # An address theme wins over the stored one, on every page, and tab links keep it.
    page.goto(server.url + "/?__theme=light")
    assert page.get_attribute("html", "data-theme") == "light"
    page.click("a[href^='/projects/eight']")
    assert page.get_attribute("html", "data-theme") == "light"
    page.click(".tabs a:has-text('Histograms')")
    assert "__theme=light" in page.url and page.get_attribute("html", "data-theme") == "light"


def test_selection_and_smoothing_follow_a_tab_click(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight?smoothing=5")
    page.click("[data-select-runs=none]")
    wait_applied(page, 1)
    assert page.is_visible("text=No runs selected")
    page.locator("#run-list input[value='id-run-4']").click()
    wait_applied(page, 2)
    page.click(".tabs a:has-text('Media & Tables')")
    page.wait_for_selector(".media-page")
    assert "(1 of 8)" in page.inner_text(".run-chooser summary")
    assert page.locator(".run-chooser input:checked").evaluate_all("bs => bs.map(b => b.value)") \
        == ["id-run-4"]
    page.click(".tabs a:has-text('Metrics')")
    wait_drawn(page)
    assert drawn_runs(page, "eval/loss") == ["run-4"]
    assert page.input_value("#smoothing") == "5"


def test_empty_views_say_why_and_offer_the_way_back(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    page.fill("input[name=metric_filter]", "no-such-metric")
    page.wait_for_selector("text=No metrics match the filter")
    assert page.locator("#panels canvas").count() == 0  # no fake axes
    page.click("button[data-clear=metric_filter]")
    wait_drawn(page)
    assert page.input_value("input[name=metric_filter]") == ""
    assert page.locator("#panels .panel").count() == len(METRICS) + 1  # + the GPU chart


def test_a_bad_setting_in_the_address_falls_back_with_a_notice(page, start_server, eight):
    server = start_server(eight)
    response = page.goto(server.url + "/projects/eight?smoothing=abc&x_axis=eval/acc")
    assert response.status == 200
    wait_drawn(page)
    assert "smoothing must be a whole number" in page.inner_text(".notices")
    assert page.input_value("#smoothing") == "0" and page.input_value("select[name=x_axis]") \
        == "metric:eval/acc"


def test_alert_markers_can_be_hidden_and_stay_hidden(page, start_server, zoo_dir):
    from trackio_zoo import ZOO

    server = start_server(zoo_dir)
    open_page(page, server, f"/projects/{ZOO}")
    markers = ("() => [...window.trackioFlask.views.values()].filter(e => e.view && e.alerts)"
               ".map(e => e.view.data('alrt').length)")
    assert max(page.evaluate(markers)) > 0
    page.uncheck("#show-alerts")
    wait_until(page, lambda: max(page.evaluate(markers)) == 0, "markers hidden")
    assert query(page)["alerts"] == ["hidden"]
    page.reload()
    wait_drawn(page)
    assert not page.is_checked("#show-alerts") and max(page.evaluate(markers)) == 0


def test_small_fixes_a_user_would_notice(page, start_server, zoo_dir, data_dir):
    """Issue 23, item 8: the lightbox at natural size, alert badges on one line, a reports filter
    without a button, the compare search applying as you type, long run names that keep their
    details link."""
    from trackio_zoo import ZOO

    server = start_server(zoo_dir)
    page.goto(f"{server.url}/projects/{ZOO}/media")
    page.locator("a[data-lightbox]").first.click()
    image = page.wait_for_selector("#lightbox-image")
    wait_until(page, lambda: image.evaluate("i => i.complete && i.naturalWidth > 0"), "the image")
    assert image.evaluate("i => [i.clientWidth, i.naturalWidth]") == [24, 24]  # not blown up
    page.keyboard.press("Escape")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/projects/{ZOO}/reports")
    lines = page.locator(".alert-level").evaluate_all("bs => bs.map(b => b.getClientRects().length)")
    assert lines and set(lines) == {1}  # "error" never wraps mid-word
    assert page.locator("#level-filter button:visible").count() == 0
    page.set_viewport_size({"width": 1400, "height": 1100})
    page.goto(f"{server.url}/projects/{ZOO}/compare")
    before = page.locator(".compare-table tbody tr").count()
    page.locator("#compare-q").press_sequentially("lr", delay=30)
    wait_until(page, lambda: 0 < page.locator(".compare-table tbody tr").count() < before,
               "the table filtered without Enter")
    wait_until(page, lambda: "q=lr" in page.url, "the search in the address")
    db = ProjectDB(data_dir / "names.db")
    db.log("a-very-long-run-name-" * 8, 0, {"loss": 1.0})
    db.close()
    names = start_server(data_dir)
    page.goto(f"{names.url}/projects/names")
    wait_drawn(page)
    link, sidebar = page.locator(".run-link").first.bounding_box(), \
        page.locator("#sidebar").bounding_box()
    assert link["x"] + link["width"] <= sidebar["x"] + sidebar["width"]


# ---- previews: a control's first visible change before the server answers ---------------------

def hold_applies(page) -> list:
    """Hold every control change's refresh request (no `v`: polls go through) until released."""
    held: list = []
    page.route(re.compile(r"/refresh\?"), lambda route: held.append(route)
               if not re.search(r"[?&]v=", route.request.url) else route.continue_())
    return held


def release(held: list) -> None:
    while held:
        held.pop(0).continue_()


def runs_in_every_chart(page) -> list[list[str]]:
    """The runs each drawn metric line chart draws, and its legend names."""
    return page.evaluate("""() => [...window.trackioFlask.views.values()]
      .filter(e => e.view && e.kind === 'line' && !e.panel.closest('.section.system'))
      .map(e => [[...new Set(e.view.data('pts').map(r => r.n))].sort().join(),
                 [...e.panel.querySelectorAll('.legend-item')].map(b => b.textContent).sort().join()])""")


def test_unticking_a_run_hides_it_in_every_chart_before_the_server_answers(page, start_server,
                                                                           eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    held = hold_applies(page)
    page.locator("#run-list input[type=checkbox][value='id-run-3']").click()
    others = ",".join(sorted(set(RUNS) - {"run-3"}))
    wait_until(page, lambda: held and all(c == [others, others] for c in runs_in_every_chart(page)),
               "run-3 gone from every chart and legend while its request is held")
    assert len(held) == 1 and page.evaluate("window.trackioControls.busy()")
    assert len(runs_in_every_chart(page)) == len(METRICS)
    release(held)
    wait_applied(page, 1)
    assert all(c == [others, others] for c in runs_in_every_chart(page))  # the answer agrees


def test_ticking_a_run_back_shows_it_before_the_server_answers(page, start_server, eight):
    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    box = page.locator("#run-list input[type=checkbox][value='id-run-3']")
    box.click()
    wait_applied(page, 1)
    every = ",".join(RUNS)
    assert all(c[0] != every for c in runs_in_every_chart(page))
    held = hold_applies(page)
    page.locator("#run-list input[type=checkbox][value='id-run-3']").click()
    wait_until(page, lambda: held and all(c == [every, every] for c in runs_in_every_chart(page)),
               "run-3 back in every chart while its request is held")
    release(held)
    wait_applied(page, 2)
    assert all(c == [every, every] for c in runs_in_every_chart(page))


def smoothed_lines(page, metric: str) -> dict[str, list[float]]:
    """Per run, the smoothed values the chart draws (its points' `s`)."""
    return page.evaluate("""m => {
      const panel = document.querySelector(`.panel[data-metric="${m}"]`);
      const out = {};
      window.trackioFlask.views.get(panel.id).view.data('pts')
        .forEach(r => { (out[r.n] = out[r.n] || []).push([r.i, r.s]); });
      Object.keys(out).forEach(n => { out[n] = out[n].sort((a, b) => a[0] - b[0]).map(p => p[1]); });
      return out;
    }""", metric)


def set_smoothing(page, value: int) -> None:
    page.evaluate("""v => { const range = document.getElementById('smoothing');
      range.value = String(v);
      range.dispatchEvent(new Event('input', {bubbles: true}));
      range.dispatchEvent(new Event('change', {bubbles: true})); }""", value)


@pytest.mark.parametrize("smoother", ["sma", "ema"])
def test_a_smoothing_change_resmooths_in_place_with_the_servers_values(page, start_server, eight,
                                                                       smoother):
    server = start_server(eight)
    open_page(page, server, f"/projects/eight?smoothing=5&smoother={smoother}")
    before = smoothed_lines(page, "eval/loss")
    held = hold_applies(page)
    set_smoothing(page, 20)
    preview = wait_until(page, lambda: held and (lines := smoothed_lines(page, "eval/loss")) != before
                         and lines, "the chart re-smoothed while its request is held")
    assert len(held) == 1 and sorted(preview) == RUNS
    release(held)
    wait_applied(page, 1)
    answer = wait_until(page, lambda: (lines := smoothed_lines(page, "eval/loss")) != preview
                        and lines, "the server's smoothed values")
    # The server rounds its values to 1/100,000 of a line's range on the wire; the page smoothed
    # the rounded values it held: equal within that.
    for run in RUNS:
        assert len(preview[run]) == len(answer[run]) == 300
        span = max(answer[run]) - min(answer[run])
        assert max(abs(a - b) for a, b in zip(preview[run], answer[run], strict=True)) \
            <= 2e-5 * span, run


def test_the_page_smooths_as_the_server_does(page, start_server, eight):
    """static/smoothing.js against trackio_flask.series.smooth, on rows with NaN gaps, on
    windows wider than the series, and for both methods."""
    import numpy as np

    from trackio_flask.series import smooth

    server = start_server(eight)
    open_page(page, server, "/projects/eight")
    rng = np.random.default_rng(23)
    values = rng.normal(size=400).cumsum()
    values[rng.choice(400, 60, replace=False)] = math.nan  # rows where the metric was not logged
    rows = np.flatnonzero(np.isfinite(values))
    for method in ("sma", "ema"):
        for amount in (1, 2, 7, 50, 100):
            for count in (5, 400):  # a window wider than the series, and a long one
                part = values[:count]
                kept = rows[rows < count]
                got = page.evaluate("([s, m, a]) => window.trackioSmoothing.smooth(s, m, a)",
                                    [{"i": kept.tolist(), "x": kept.tolist(),
                                      "y": part[kept].tolist()}, method, amount])
                want = smooth(part, method, amount)[kept]
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9,
                                           err_msg=f"{method} {amount} {count}")
