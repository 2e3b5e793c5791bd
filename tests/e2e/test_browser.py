"""What a viewer sees, in real Chromium against gunicorn: charts, live updates, polite polling."""

from __future__ import annotations

import re
import threading
import time
from email.utils import formatdate
from urllib.parse import parse_qs, urlparse

import pytest
from builders import ProjectDB
from test_compat_trackio import run_trackio

import trackio_flask as tf

pytestmark = pytest.mark.browser

CHART_STATE = """() => {
  const out = {};
  window.trackioFlask.views.forEach((entry, id) => {
    if (!entry.view) { out[id] = null; return; }
    const lines = [];
    const walk = (mark) => {
      if (mark.marktype === 'line' && mark.items.length) lines.push(mark.items[0].stroke);
      mark.items.forEach(item => (item.items || []).forEach(walk));
    };
    walk(entry.view.scenegraph().root);
    const rows = entry.view.data('pts');
    out[id] = {lines: lines, rows: rows.length, runs: [...new Set(rows.map(r => r.n))].sort(),
               maxX: rows.length ? Math.max(...rows.map(r => r.x)) : null,
               xmin: entry.view.signal('xmin'), xmax: entry.view.signal('xmax')};
  });
  return out;
}"""


@pytest.fixture(scope="module")
def trackio_data(tmp_path_factory):
    """A project written by the real trackio package."""
    data_dir = tmp_path_factory.mktemp("trackio-data")
    run_trackio(data_dir, """
        import trackio
        for index, name in enumerate(["run-a", "run-b", "run-c"]):
            trackio.init(project="tk", name=name, config={"lr": 0.1 * (index + 1)})
            for step in range(60):
                values = {"train/loss": 1.0 / (step + 1) + index, "train/acc": step / 60}
                if step % 10 == 0:
                    values["eval/loss"] = 2.0 / (step + 1) + index
                trackio.log(values)
            trackio.log_system({"cpu/0/utilization": 10.0 + index})
            trackio.finish()
    """)
    return data_dir


def wait_drawn(page, count=None, timeout=15000):
    page.wait_for_function(
        "n => { const p = document.querySelectorAll('.panel'); const d = "
        "document.querySelectorAll('.panel.drawn'); return p.length > 0 && d.length === "
        "(n === null ? p.length : n); }", arg=count, timeout=timeout)


def chart_state(page):
    return page.evaluate(CHART_STATE)


def run_colours(page):
    return {el.inner_text(): el.evaluate("e => getComputedStyle(e.previousElementSibling)"
                                         ".backgroundColor")
            for el in page.query_selector_all(".run-name")}


def rgb(hex_colour):
    value = hex_colour.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(value[i:i + 2], 16) for i in (0, 2, 4)))


def errors(page):
    return [m for m in page.console_messages
            if m.startswith(("error", "pageerror")) or "Content Security Policy" in m]


def test_trackio_project_draws_every_panel_with_one_line_per_run(page, start_server, trackio_data):
    server = start_server(trackio_data)
    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    sections = page.eval_on_selector_all("details.section > summary",
                                         "els => els.map(e => e.firstChild.textContent.trim())")
    assert sections == ["eval", "train", "cpu"]
    colours = {name: rgb_value for name, rgb_value in run_colours(page).items()}
    state = chart_state(page)
    assert len(state) == 4
    for panel_id, panel in state.items():
        assert panel is not None and panel["rows"] > 0, panel_id
        assert panel["runs"] == ["run-a", "run-b", "run-c"]
        assert sorted(rgb(c) for c in panel["lines"]) == sorted(colours.values())
    assert errors(page) == []


def test_live_steps_new_runs_and_metrics_appear_without_reload_and_zoom_survives(
        page, start_server, data_dir):
    tf.init(project="live", name="first", data_dir=data_dir)
    for step in range(30):
        tf.log({"train/loss": 1.0 / (step + 1)}, step=step)
    tf.finish()
    server = start_server(data_dir)
    page.goto(server.url + "/projects/live")
    wait_drawn(page)
    page.evaluate("window.__marker = 'same page'")
    panel = page.query_selector(".panel .chart canvas")
    box = panel.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5, steps=8)
    page.mouse.up()
    page.wait_for_function("() => window.trackioFlask.zoom() !== null", timeout=5000)
    zoom = page.evaluate("window.trackioFlask.zoom()")
    assert "xmin=" in page.url

    stop = threading.Event()

    def writer():
        run = tf.init(project="live", name="first", data_dir=data_dir, resume="allow")
        step = 30
        while not stop.is_set():
            run.log({"train/loss": 1.0 / (step + 1)}, step=step)
            step += 1
            stop.wait(0.3)
        run.finish()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        page.wait_for_function(
            "() => { for (const [id, e] of window.trackioFlask.views) { if (!e.view) continue; "
            "const rows = e.view.data('pts'); if (Math.max(...rows.map(r => r.x)) >= 35) "
            "return true; } return false; }", timeout=4000)
    finally:
        stop.set()
        thread.join()
    state = next(iter(chart_state(page).values()))
    assert [state["xmin"], state["xmax"]] == zoom  # zoom kept across refreshes
    second = tf.init(project="live", name="second-run", data_dir=data_dir)
    second.log({"train/loss": 5.0, "eval/brand_new": 1.0})
    second.log({"train/loss": 4.0, "eval/brand_new": 2.0})
    tf.finish()
    page.wait_for_selector(".run-name:text('second-run')", timeout=5000)
    page.wait_for_selector("[data-metric='eval/brand_new'].drawn", timeout=5000)
    assert page.evaluate("window.__marker") == "same page"
    assert errors(page) == []


def test_one_request_per_refresh_and_204_when_nothing_changed(page, start_server, trackio_data):
    server = start_server(trackio_data)
    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    before = server.count()
    time.sleep(5.5)
    during = server.requests()[before:]
    assert 4 <= len(during) <= 7  # one per 1 s interval, never more
    assert {status for _, _, status in during} == {204}
    others = server.count(r"^GET /(?!static|version|projects/tk/refresh)")
    assert others == 1  # the page itself; nothing else polls


def test_hidden_tab_sends_nothing_and_refreshes_once_when_visible(page, start_server, trackio_data):
    server = start_server(trackio_data)
    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    page.evaluate("""() => {
        window.__hidden = true;
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => window.__hidden});
        Object.defineProperty(document, 'visibilityState', {configurable: true,
            get: () => window.__hidden ? 'hidden' : 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    time.sleep(0.5)
    before = server.count()
    time.sleep(3.5)
    assert server.count() == before
    page.evaluate("() => { window.__hidden = false; "
                  "document.dispatchEvent(new Event('visibilitychange')); }")
    time.sleep(0.4)
    assert server.count() == before + 1


@pytest.mark.parametrize("retry_after", ["3", "http-date", None])
def test_429_pauses_all_polling_shows_a_notice_and_resumes(page, start_server, trackio_data,
                                                          retry_after):
    # The default cooldown (no header) is 3 s; with a header it is long, so resuming within
    # a few seconds proves the header was read.
    server = start_server(trackio_data, TRACKIO_FLASK_POLL_COOLDOWN_S="3" if retry_after is None
                          else "30")
    sent = []
    state = {"limited": False}

    def handle(route):
        if not state["limited"]:
            state["limited"] = True
            headers = {"Cache-Control": "no-store"}
            if retry_after == "http-date":
                headers["Retry-After"] = formatdate(time.time() + 4, usegmt=True)
            elif retry_after:
                headers["Retry-After"] = retry_after
            state["at"] = time.time()
            route.fulfill(status=429, body="RATE LIMITED BODY", headers=headers)
            return
        sent.append(time.time())
        route.continue_()

    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    page.route(re.compile(r".*/refresh\?.*"), handle)
    page.wait_for_selector("#poll-notice:not([hidden])", timeout=5000)
    assert "paused, resuming in" in page.inner_text("#poll-notice")
    page.wait_for_timeout(6500)  # (route handlers only run while Playwright waits)
    assert sent, "polling never resumed"
    assert 2.9 <= sent[0] - state["at"] <= 6.5
    assert "RATE LIMITED BODY" not in page.content()
    assert page.is_hidden("#poll-notice")


def test_hf_space_host_polls_at_the_slow_interval(page, start_server, trackio_data):
    server = start_server(trackio_data)
    page.goto(f"http://someone-demo.hf.space:{server.port}/projects/tk")
    wait_drawn(page)
    trigger = page.get_attribute("#poller", "hx-trigger")
    assert trigger.startswith("every 3.5s")
    before = server.count()
    time.sleep(7.5)
    assert 1 <= server.count() - before <= 3


HOSTILE = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>",
           "' onmouseover='alert(3)"]


def test_hostile_names_display_as_text_and_run_nothing(page, start_server, data_dir):
    db = ProjectDB(data_dir / "h.db")
    for index, name in enumerate(HOSTILE):
        db.config(name, {name: name}, run_id=f"k{index}")
        db.log(name, 0, {name: 1.0}, run_id=f"k{index}")
        db.log(name, 1, {name: 2.0}, run_id=f"k{index}")
    db.close()
    server = start_server(data_dir)
    for path in ("/projects/h", "/projects/h/runs", "/projects/h/runs/k0"):
        page.goto(server.url + path)
        page.wait_for_timeout(1500)
        for canvas in page.query_selector_all(".panel canvas"):
            canvas.hover()  # tooltips render the names too
            page.wait_for_timeout(100)
        assert page.dialogs == [], path
        assert page.query_selector("img[src=x]") is None
    page.goto(server.url + "/projects/h")
    names = page.eval_on_selector_all(".run-name", "els => els.map(e => e.textContent)")
    assert sorted(names) == sorted(HOSTILE)
    metrics = page.eval_on_selector_all(".panel", "els => els.map(e => e.dataset.metric)")
    assert sorted(m for m in metrics if m in HOSTILE) == sorted(HOSTILE)
    assert errors(page) == []


def test_no_csp_violations_or_script_errors_on_any_page(page, start_server, trackio_data):
    server = start_server(trackio_data)
    for path in ("/", "/projects/tk", "/projects/tk?smoothing=20&log_y=1&x_axis=time",
                 "/projects/tk/runs", "/projects/tk/runs/" + "x", "/projects/nope"):
        page.goto(server.url + path)
        page.wait_for_timeout(1200)
    assert errors(page) == [m for m in errors(page) if "404" in m]
    assert not [m for m in page.console_messages if "Content Security Policy" in m]


def test_controls_change_charts_and_url_and_reload_restores_them(page, start_server, trackio_data):
    server = start_server(trackio_data)
    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    page.uncheck(".run:has-text('run-b') input")
    page.wait_for_load_state("load")
    wait_drawn(page)
    drawn = [p for p in chart_state(page).values() if p]
    assert drawn and all("run-b" not in p["runs"] and p["runs"] for p in drawn)
    page.fill("input[name=metric_filter]", "loss")
    page.press("input[name=metric_filter]", "Enter")
    page.wait_for_load_state("load")
    wait_drawn(page)
    page.select_option("select[name=x_axis]", "time")
    page.wait_for_load_state("load")
    wait_drawn(page)
    page.check("input[name=log_y]")
    page.wait_for_load_state("load")
    wait_drawn(page)
    page.fill("input[name=smoothing]", "30")
    page.dispatch_event("input[name=smoothing]", "change")
    page.wait_for_load_state("load")
    wait_drawn(page)
    query = parse_qs(urlparse(page.url).query)
    assert query["metric_filter"] == ["loss"] and query["x_axis"] == ["time"]
    assert query["log_y"] == ["1"] and query["smoothing"] == ["30"]
    assert "run-b" not in ",".join(query["run_ids"])
    titles = page.eval_on_selector_all(".panel-title", "els => els.map(e => e.textContent)")
    assert titles == ["loss", "loss", "0/utilization (%)"]
    shapes = page.eval_on_selector_all(".panel", "els => els.map(e => e.dataset.shape)")
    assert shapes[0].startswith("line-time-log-s")
    before = chart_state(page)
    page.reload()
    wait_drawn(page)
    after = chart_state(page)
    assert {k: v["runs"] for k, v in after.items()} == {k: v["runs"] for k, v in before.items()}
    page.fill("input[name=run_filter]", "run-c")
    page.press("input[name=run_filter]", "Enter")
    page.wait_for_load_state("load")
    names = page.eval_on_selector_all(".run-name", "els => els.map(e => e.textContent)")
    assert names == ["run-c"]
    assert errors(page) == []


def test_retry_after_on_other_statuses_is_ignored(page, start_server, trackio_data):
    server = start_server(trackio_data)
    sent = []

    def handle(route):
        sent.append(time.time())
        if len(sent) == 1:
            route.fulfill(status=204, headers={"Retry-After": "30"})
        else:
            route.continue_()

    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    page.route(re.compile(r".*/refresh\?.*"), handle)
    page.wait_for_timeout(3500)
    assert len(sent) >= 3  # kept polling every second
    assert page.is_hidden("#poll-notice")


def test_server_errors_back_off_exponentially(page, start_server, trackio_data):
    server = start_server(trackio_data)
    sent = []

    def handle(route):
        sent.append(time.time())
        route.fulfill(status=500, body="boom")

    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    page.route(re.compile(r".*/refresh\?.*"), handle)
    page.wait_for_timeout(9000)
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert 2 <= len(sent) <= 4, sent  # 1 s polling would have sent 9
    assert all(later > earlier * 1.4 for earlier, later in zip(gaps, gaps[1:], strict=False))
    assert "boom" not in page.content()
