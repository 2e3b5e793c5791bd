"""What a viewer sees, in real Chromium against gunicorn: charts, live updates, polite polling."""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from email.utils import formatdate
from urllib.parse import parse_qs, urlparse

import pytest
from builders import ProjectDB
from trackio_zoo import run_trackio

import trackio_flask as tf

from .waiting import wait_until

pytestmark = pytest.mark.browser

# Nothing here sleeps for a fixed time and then counts: tests wait for conditions (access-log
# lines, the page's own record of its polls, DOM state) with timeouts generous enough for a
# machine whose cores are all busy (`make e2e-under-load`), and compare timestamps.

# The page's refresh requests as the browser sees them, in its own clock (Unix seconds; the
# same clock as time.time() and the server's access log). Listeners on window run after the
# page's listeners on document, so a request app.js cancelled (hidden tab, pause) shows as
# "blocked"; `by` is "timer" for the poller's interval and the event name ("poll-now") for a
# poll the page triggered itself.
POLL_LOG = """(() => {
  const log = window.__polls = [];
  const refresh = e => { const p = e.detail && e.detail.pathInfo;
    return !!p && (p.requestPath || '').indexOf('/refresh') !== -1; };
  const by = e => { const c = e.detail.requestConfig;
    return c && c.triggeringEvent ? c.triggeringEvent.type : 'timer'; };
  const now = () => Date.now() / 1000;
  window.addEventListener('htmx:beforeRequest', e => {
    if (refresh(e) && e.defaultPrevented) log.push({kind: 'blocked', t: now(), by: by(e)});
  });
  window.addEventListener('htmx:beforeSend', e => {
    if (refresh(e)) log.push({kind: 'sent', t: now(), by: by(e), hidden: document.hidden});
  });
  window.addEventListener('htmx:afterRequest', e => {
    if (refresh(e)) log.push({kind: 'done', t: now(), status: e.detail.xhr.status});
  });
})()"""

# Both return when it happened and how many poll-log entries came before.
HIDE_TAB = """() => {
    window.__hidden = true;
    Object.defineProperty(document, 'hidden', {configurable: true, get: () => window.__hidden});
    Object.defineProperty(document, 'visibilityState', {configurable: true,
        get: () => window.__hidden ? 'hidden' : 'visible'});
    const mark = {t: Date.now() / 1000, index: window.__polls.length};
    document.dispatchEvent(new Event('visibilitychange'));
    return mark;
}"""

SHOW_TAB = """() => {
    window.__hidden = false;
    const mark = {t: Date.now() / 1000, index: window.__polls.length};
    document.dispatchEvent(new Event('visibilitychange'));
    return mark;
}"""

# Page coordinates near a hoverable point of a panel (a row of dataset `pts`; where rows carry
# `h`, only those are hover targets): the point nearest the plot's centre, nudged a fifth of the
# way towards it (a corner point may sit under the actions button; hover picks the nearest
# point anyway). Positions come from the view's own scales, not from its scenegraph.
HOVER_TARGET = """(panelId) => {
  document.getElementById(panelId).scrollIntoView({block: 'center', behavior: 'instant'});
  const view = window.trackioFlask.views.get(panelId).view;
  if (!view) return null;  // a chart with no line for the selected runs draws none
  const box = view.container().querySelector('canvas').getBoundingClientRect();
  const [ox, oy] = view.origin();
  const sx = view.scale('x'), sy = view.scale('y');
  const points = view.data('pts').filter(r => r.h !== false)
    .map(r => [sx(r.x), sy(r.y)]).filter(([x, y]) => isFinite(x) && isFinite(y));
  if (!points.length) return null;
  const [cx, cy] = [view.width() / 2, view.height() / 2];
  const distance = ([x, y]) => Math.hypot(x - cx, y - cy);
  const [x, y] = points.reduce((best, p) => distance(p) < distance(best) ? p : best);
  return {x: box.left + ox + x + (cx - x) / 5, y: box.top + oy + y + (cy - y) / 5};
}"""

# The hover readout of line charts (app.js), or Vega's tooltip on bar charts.
TIP = "#readout:not([hidden]), #vg-tooltip-element.visible"

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


def watch_polls(page) -> None:
    """Record the page's refresh requests (see POLL_LOG) in every document it loads from now."""
    page.add_init_script(POLL_LOG)


def polls(page, kind: str, since: float = 0.0, after: int = 0) -> list[dict]:
    """The page's `kind` entries from time `since` on and after the first `after` entries."""
    return [e for e in page.evaluate("() => window.__polls || []")[after:]
            if e["kind"] == kind and e["t"] >= since]


def settle(page, server) -> int:
    """Wait until every refresh the page sent is answered and in the access log; the count."""
    def settled():
        log = page.evaluate("() => window.__polls")
        sent = sum(e["kind"] == "sent" for e in log)
        answered = sum(e["kind"] == "done" for e in log)
        return sent == answered == server.count() and (True, sent)

    return wait_until(page, settled, "the page's refreshes to be answered and logged")[1]


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def hover_target(page, panel_id: str) -> bool:
    """Move the mouse onto a hover target of a drawn panel; False if it has none (no data)."""
    point = page.evaluate(HOVER_TARGET, panel_id)
    if not point:
        return False
    page.mouse.move(point["x"] - 15, point["y"] - 15)
    page.mouse.move(point["x"], point["y"], steps=5)
    return True


def wait_drawn(page, count=None, timeout=60000):
    page.wait_for_function(
        "n => { const p = document.querySelectorAll('.panel'); const d = "
        "document.querySelectorAll('.panel.drawn'); return p.length > 0 && d.length === "
        "(n === null ? p.length : n); }", arg=count, timeout=timeout)


def wait_settled(page) -> None:
    """Wait until every panel of the page (if any) has been drawn."""
    page.wait_for_function("() => document.readyState === 'complete' && "
                           "[...document.querySelectorAll('.panel')]"
                           ".every(p => p.classList.contains('drawn'))")


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
    page.wait_for_function("() => window.trackioFlask.zoom() !== null")
    zoom = page.evaluate("window.trackioFlask.zoom()")
    assert "xmin=" in page.url

    stop = threading.Event()

    def writer():
        run = tf.init(project="live", name="first", data_dir=data_dir, resume="allow")
        step = 30
        while not stop.is_set():
            run.log({"train/loss": 1.0 / (step + 1)}, step=step)
            step += 1
            stop.wait(0.3)  # a live run's pace; the test waits on the chart, not on this
        run.finish()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        page.wait_for_function(
            "() => { for (const [id, e] of window.trackioFlask.views) { if (!e.view) continue; "
            "const rows = e.view.data('pts'); if (Math.max(...rows.map(r => r.x)) >= 35) "
            "return true; } return false; }")
    finally:
        stop.set()
        thread.join()
    state = next(iter(chart_state(page).values()))
    assert [state["xmin"], state["xmax"]] == zoom  # zoom kept across refreshes
    second = tf.init(project="live", name="second-run", data_dir=data_dir)
    second.log({"train/loss": 5.0, "eval/brand_new": 1.0})
    second.log({"train/loss": 4.0, "eval/brand_new": 2.0})
    tf.finish()
    page.wait_for_selector(".run-name:text('second-run')")
    page.wait_for_selector("[data-metric='eval/brand_new'].drawn")
    assert page.evaluate("window.__marker") == "same page"
    assert errors(page) == []


def test_one_request_per_refresh_and_204_when_nothing_changed(page, start_server, trackio_data):
    server = start_server(trackio_data)
    watch_polls(page)
    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    wait_until(page, lambda: len(polls(page, "sent")) >= 6, "six refreshes")
    logged = settle(page, server)
    sent = polls(page, "sent")
    assert logged == len(sent)  # one request per refresh, nothing else on /refresh
    assert {e["by"] for e in sent} == {"timer"}
    # The interval is 1 s: a busy machine may stretch the gaps, never shorten them.
    assert min(gaps([e["t"] for e in sent])) >= 0.9, gaps([e["t"] for e in sent])
    assert {r.status for r in server.requests()} == {204}
    assert {e["status"] for e in polls(page, "done")} == {204}
    others = server.count(r"^GET /(?!static|version|projects/tk/refresh)")
    assert others == 1  # the page itself; nothing else polls


def test_hidden_tab_sends_nothing_and_refreshes_once_when_visible(page, start_server, trackio_data):
    server = start_server(trackio_data)
    watch_polls(page)
    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    wait_until(page, lambda: polls(page, "done"), "polling to start")
    hidden = page.evaluate(HIDE_TAB)
    # A refresh sent just before the tab was hidden may still be on its way: let it land.
    before = settle(page, server)
    quiet_from = time.time()

    def quiet_long_enough():
        sent = polls(page, "sent", after=hidden["index"])
        assert sent == [], f"refreshed while hidden: {sent}"
        ticks = polls(page, "blocked", since=quiet_from)
        return len(ticks) >= 3 and time.time() - quiet_from >= 3.5

    # Hidden through at least three of the page's own interval ticks, each cancelled.
    wait_until(page, quiet_long_enough, "three interval ticks while hidden")
    assert server.count() == before
    assert polls(page, "sent", after=hidden["index"]) == []
    assert not [e for e in polls(page, "sent") if e["hidden"]]

    visible = page.evaluate(SHOW_TAB)
    wait_until(page, lambda: server.count() > before, "a refresh once the tab is visible")
    assert server.requests()[before].at >= visible["t"] - 0.01
    # Let the interval tick twice more: the ticks missed while hidden must not burst out now.
    wait_until(page, lambda: len([e for e in polls(page, "sent", after=visible["index"])
                                  if e["by"] == "timer"]) >= 2, "two interval refreshes")
    after = polls(page, "sent", after=visible["index"])
    assert after[0]["by"] == "poll-now", after  # sent by the visibility handler itself …
    assert after[0]["t"] - visible["t"] < 1.0, after  # … at once, not at the next tick
    assert [e["by"] for e in after].count("poll-now") == 1, after
    timer = [e["t"] for e in after if e["by"] == "timer"]
    assert min(gaps(timer)) >= 0.9, after  # one per interval from then on
    assert settle(page, server) == before + len(polls(page, "sent", after=visible["index"]))


@pytest.mark.parametrize("retry_after", ["3", "http-date", None])
def test_429_pauses_all_polling_shows_a_notice_and_resumes(page, start_server, trackio_data,
                                                          retry_after):
    # The default cooldown (no header) is 3 s; with a header it is 30 s, so resuming well
    # before 30 s proves the header was read (and before 15 s that the page's cooldown was).
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
    page.wait_for_function("() => { const n = document.getElementById('poll-notice'); "
                           "return !n.hidden && n.textContent.includes('paused, resuming in'); }")
    wait_until(page, lambda: sent, "polling to resume")
    # 3-4 s asked for; a busy machine only adds delay, and ignoring the header would mean
    # 30 s or more (15 s or more for the no-header cooldown).
    assert 2.9 <= sent[0] - state["at"] <= 12, sent[0] - state["at"]
    page.wait_for_selector("#poll-notice", state="hidden")
    assert "RATE LIMITED BODY" not in page.content()


def test_hf_space_host_polls_at_the_slow_interval(page, start_server, trackio_data):
    server = start_server(trackio_data)
    watch_polls(page)
    page.goto(f"http://someone-demo.hf.space:{server.port}/projects/tk")
    wait_drawn(page)
    trigger = page.get_attribute("#poller", "hx-trigger")
    assert trigger.startswith("every 3.5s")
    wait_until(page, lambda: len(polls(page, "sent")) >= 3, "three refreshes")
    assert settle(page, server) == len(polls(page, "sent"))
    times = [e["t"] for e in polls(page, "sent")]
    assert min(gaps(times)) >= 3.4, gaps(times)  # never faster than 3.5 s


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
        wait_settled(page)
        for panel_id in page.eval_on_selector_all(".panel", "els => els.map(e => e.id)"):
            page.mouse.move(0, 0)
            page.wait_for_selector(TIP, state="detached")
            if hover_target(page, panel_id):  # readouts and tooltips render the names too
                page.wait_for_selector(TIP)
            assert page.query_selector("img[src=x]") is None, path
        assert page.dialogs == [], path
        assert page.query_selector("img[src=x]") is None
    page.goto(server.url + "/projects/h")
    names = page.eval_on_selector_all(".run-name", "els => els.map(e => e.textContent)")
    assert sorted(names) == sorted(HOSTILE)
    metrics = page.eval_on_selector_all(".panel", "els => els.map(e => e.dataset.metric)")
    assert sorted(m for m in metrics if m in HOSTILE) == sorted(HOSTILE)
    assert errors(page) == []


def test_chart_tooltip_names_the_run(page, start_server, data_dir):
    tf.init(project="tip", name="alpha-run", data_dir=data_dir)
    for step in range(20):
        tf.log({"train/loss": 1.0 / (step + 1)}, step=step)
    tf.finish()
    server = start_server(data_dir)
    page.goto(server.url + "/projects/tip")
    wait_drawn(page)
    assert hover_target(page, page.get_attribute(".panel", "id"))
    tooltip = page.wait_for_selector(TIP)
    text = tooltip.inner_text()
    assert "alpha-run" in text, text
    assert "undefined" not in text, text


def test_no_csp_violations_or_script_errors_on_any_page(page, start_server, trackio_data):
    server = start_server(trackio_data)
    watch_polls(page)
    for path in ("/", "/projects/tk", "/projects/tk?smoothing=20&log_y=1&x_axis=time",
                 "/projects/tk/runs", "/projects/tk/runs/" + "x", "/projects/nope"):
        page.goto(server.url + path)
        wait_settled(page)
        if page.query_selector("#poller"):  # and one refresh went through htmx
            wait_until(page, lambda: polls(page, "done"), f"a refresh of {path}")
    assert errors(page) == [m for m in errors(page) if "404" in m]
    assert not [m for m in page.console_messages if "Content Security Policy" in m]


@contextmanager
def applying(page):
    """The controls apply in place: wait until the page has drawn one more change."""
    before = page.evaluate("window.trackioFlask.stats.apply.length")
    yield
    wait_until(page, lambda: page.evaluate("window.trackioFlask.stats.apply.length") > before
               and not page.evaluate("window.trackioControls.busy()"), "the change applied")


def test_controls_change_charts_and_url_and_reload_restores_them(page, start_server, trackio_data):
    server = start_server(trackio_data)
    page.goto(server.url + "/projects/tk")
    wait_drawn(page)
    page.evaluate("window.__same_document = true")
    with applying(page):
        page.uncheck(".run:has-text('run-b') input")
    wait_drawn(page)
    drawn = [p for p in chart_state(page).values() if p]
    assert drawn and all("run-b" not in p["runs"] and p["runs"] for p in drawn)
    with applying(page):
        page.fill("input[name=metric_filter]", "loss")
        page.press("input[name=metric_filter]", "Enter")
    wait_drawn(page)
    with applying(page):
        page.select_option("select[name=x_axis]", "time")
    wait_drawn(page)
    with applying(page):
        page.check("input[name=log_y]")
    wait_drawn(page)
    with applying(page):
        page.fill("input[name=smoothing]", "30")
        page.dispatch_event("input[name=smoothing]", "change")
    wait_drawn(page)
    assert page.evaluate("window.__same_document") is True
    query = parse_qs(urlparse(page.url).query)
    assert query["metric_filter"] == ["loss"] and query["x_axis"] == ["time"]
    assert query["log_y"] == ["1"] and query["smoothing"] == ["30"]
    # The selection rides as a short token (trackio_flask/selection.py), not a list of ids.
    assert "run_ids" not in query and query["sel"][0][0] in "ixb"
    titles = page.eval_on_selector_all(".panel-title", "els => els.map(e => e.textContent)")
    assert titles == ["loss", "loss"]  # the filter applies to system metrics too
    shapes = page.eval_on_selector_all(".panel", "els => els.map(e => e.dataset.shape)")
    assert shapes[0].startswith("line-time-log-s")
    before = chart_state(page)
    page.reload()
    wait_drawn(page)
    after = chart_state(page)
    assert {k: v["runs"] for k, v in after.items()} == {k: v["runs"] for k, v in before.items()}
    with applying(page):
        page.fill("input[name=run_filter]", "run-c")
        page.press("input[name=run_filter]", "Enter")
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
    wait_until(page, lambda: len(sent) >= 3, "two more refreshes after a 204 with Retry-After")
    # Kept polling every second: honouring the header would have paused 30 s.
    assert max(gaps(sent)) < 10, gaps(sent)
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
    wait_until(page, lambda: len(sent) >= 4, "three retries after 500s", timeout=120)
    # The k-th failure pauses 2^k s ± 20 % (1 s polling would retry after 1 s); a busy machine
    # can only lengthen the gaps, so each must reach at least the smallest doubled pause.
    for k, gap in enumerate(gaps(sent[:4]), start=1):
        assert gap >= 0.8 * 2 ** k - 0.05, gaps(sent)
    assert "boom" not in page.content()
