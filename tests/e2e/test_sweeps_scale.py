"""Issue #19 in Chromium under gunicorn (its 4,094-character request line): unticking one run of
120 with trackio's 32-hex run ids, then every other control, keeps each request and address short;
the browser's selection codec writes what the server's writes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from scale_builders import many_runs, run_id

from trackio_flask import selection

from .test_cross_site import attacker_site  # noqa: F401 (a fixture)
from .test_interaction import drawn_runs, wait_applied, wait_drawn
from .waiting import wait_until

pytestmark = pytest.mark.browser
URL_LIMIT = 2000


@pytest.fixture
def p120(data_dir):
    return many_runs(data_dir / "p120.db", 120)


def lines_and_band(page, metric: str) -> tuple[int, str]:
    """How many runs a chart draws as lines, and the name of its band ("" without one)."""
    names = drawn_runs(page, metric)
    band = [name for name in names if "more runs" in name]
    return len(names) - len(band), band[0] if band else ""


def box(page, run_id: str):
    return page.locator(f"#run-list input[name=run_ids][value='{run_id}']")


def test_unticking_one_of_120_runs_under_gunicorn(page, start_server, data_dir, p120):
    server = start_server(data_dir)
    page.goto(server.url + "/projects/p120?sel=all")
    wait_drawn(page)
    assert lines_and_band(page, "loss_0") == (50, "70 more runs (mean, min–max)")
    gone = p120[117]
    box(page, gone).uncheck()
    wait_applied(page, 1)
    wait_until(page, lambda: "sel=x120_" in page.url, "the address to carry the token")
    assert len(page.url) < URL_LIMIT
    assert parse_qs(urlparse(page.url).query)["sel"][0].endswith("_117")
    wait_until(page, lambda: lines_and_band(page, "loss_0")[1].startswith("69 more"),
               "the band to lose a run")
    assert "run-00117" not in drawn_runs(page, "loss_0")
    assert page.locator("#run-list input:checked").count() == 119
    # Every other control applies with the selection riding along, in short requests.
    page.locator("select[name=x_axis]").select_option("time")
    wait_applied(page, 2)
    page.locator("input[name=log_y]").check()
    wait_applied(page, 3)
    page.locator("input[name=metric_filter]").fill("loss_1")
    page.locator("input[name=metric_filter]").press("Enter")
    wait_applied(page, 4)
    wait_until(page, lambda: page.locator(".panel[data-metric='loss_1']").count() == 1
               and page.locator(".panel[data-metric='loss_0']").count() == 0, "the filter applied")
    assert lines_and_band(page, "loss_1") == (50, "69 more runs (mean, min–max)")
    logged = server.requests(r"/projects/p120")
    assert logged and all(request.status < 400 for request in logged), logged
    assert all(len(request.line) < URL_LIMIT for request in logged)
    # The address reopens the same view.
    page.reload()
    wait_drawn(page)
    assert not box(page, gone).is_checked() and box(page, p120[116]).is_checked()
    assert lines_and_band(page, "loss_1") == (50, "69 more runs (mean, min–max)")


def test_the_default_latest_ten_then_one_more_and_show_all(page, start_server, data_dir, p120):
    server = start_server(data_dir)
    page.goto(server.url + "/projects/p120")
    wait_drawn(page)
    assert len(drawn_runs(page, "loss_0")) == selection.DEFAULT_COUNT
    assert "10 of 120 runs" in page.locator("#shown-runs").inner_text()
    box(page, p120[3]).check()
    wait_applied(page, 1)
    wait_until(page, lambda: len(drawn_runs(page, "loss_0")) == 11, "11 lines")
    token = parse_qs(urlparse(page.url).query)["sel"][0]
    assert token == selection.encode({3, *range(110, 120)}, 120, selection.prefix_fp(p120, 120))
    page.locator("#shown-runs [data-select-runs=all]").click()
    wait_applied(page, 2)
    wait_until(page, lambda: lines_and_band(page, "loss_0") == (50, "70 more runs (mean, min–max)"),
               "50 lines and a band for the rest")
    assert parse_qs(urlparse(page.url).query)["sel"] == ["all"]
    assert all(request.status < 400 for request in server.requests(r"/projects/p120"))


def test_the_browser_codec_writes_what_the_server_writes(page, start_server, data_dir, p120):
    server = start_server(data_dir)
    page.goto(server.url + "/projects/p120")
    wait_drawn(page)
    for count, picked in ((120, {5}), (120, set(range(120)) - {0, 60}), (2000, set(range(0, 2000, 3))),
                          (10_000, set(range(0, 10_000, 2))), (9, set())):
        written = page.evaluate("([p, n]) => window.trackioControls.encodeToken("
                                "Object.fromEntries(p.map(i => [i, true])), n, 'ab12')",
                                [sorted(picked), count])
        assert written == selection.encode(picked, count, "ab12")
        read = page.evaluate("t => Object.keys(window.trackioControls.parseToken(t).picked).map(Number)",
                             written)
        assert set(read) == picked



BAND_TOP = """m => {
  const panel = document.querySelector(`.panel[data-metric="${m}"]`);
  const view = window.trackioFlask.views.get(panel.id).view;
  const rows = view.data('band').filter(r => r.r === '\\x1eothers');
  return rows.length ? Math.max(...rows.map(r => r.hi)) : null;
}"""


def test_the_grey_band_follows_a_run_in_it_that_logs_without_a_reload(page, start_server,
                                                                      data_dir, p120):
    import sqlite3

    from builders import stamp
    server = start_server(data_dir)
    page.goto(server.url + "/projects/p120?sel=all")
    wait_drawn(page)
    page.evaluate("window.__marker = 'same page'")
    assert page.evaluate(BAND_TOP, "loss_0") < 50
    with sqlite3.connect(data_dir / "p120.db", isolation_level=None) as conn:
        conn.execute("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                     "VALUES (?, ?, ?, ?, ?)", (p120[3], stamp(500), "run-00003", 1,
                                                b'{"loss_0": 100.0}'))
    wait_until(page, lambda: (page.evaluate(BAND_TOP, "loss_0") or 0) >= 100,
               "the band to reach the new value")
    assert page.evaluate("window.__marker") == "same page"  # a poll's delta, not a reload
    assert lines_and_band(page, "loss_0") == (50, "70 more runs (mean, min–max)")
    assert page.evaluate(BAND_TOP, "loss_1") < 50


@pytest.fixture(scope="module")
def p10k(tmp_path_factory):
    directory = tmp_path_factory.mktemp("p10k")
    many_runs(directory / "big.db", 10_000, steps=20, metrics=2)
    return directory


def test_a_10000_run_page_with_every_run_selected_stays_within_its_budgets(page, start_server,
                                                                           p10k):
    """Counted, not timed: bytes the page loads and lines its charts draw."""
    server = start_server(p10k)
    page.goto(server.url + "/projects/big?sel=all")
    wait_drawn(page)
    document = page.evaluate("performance.getEntriesByType('navigation')[0].transferSize")
    assert 0 < document <= 500_000
    for metric in ("loss_0", "loss_1"):
        assert lines_and_band(page, metric) == (50, "9,950 more runs (mean, min–max)")
    assert page.locator("#run-list input[name=run_ids]").count() == 200
    assert "50 newest of 10,000 runs as lines" in page.locator(".lines-caption").first.inner_text()
    # Unticking one run of 10,000 keeps the request short and answers in place.
    box(page, run_id(9_999)).uncheck()
    wait_applied(page, 1)
    wait_until(page, lambda: "sel=x10000_" in page.url, "the token in the address")
    assert len(page.url) < URL_LIMIT
    wait_until(page, lambda: lines_and_band(page, "loss_0") == (50, "9,949 more runs (mean, min–max)"),
               "the newest run to leave the lines")
    assert all(request.status < 400 and len(request.line) < URL_LIMIT
               for request in server.requests(r"/projects/big"))


FORM_ATTACK = """<!doctype html><title>attacker</title>
<form id="f" method="post" action="%(victim)s/projects/p120/runs/delete-selected">
  <input name="run" value="%(run)s"><input name="csrf" value="%(csrf)s"></form>
<script>document.getElementById("f").submit();</script>"""


def test_bulk_delete_from_the_runs_table_and_not_from_another_origin(
        page, start_server, data_dir, p120, attacker_site):  # noqa: F811 (the fixture)
    server = start_server(data_dir, TRACKIO_WRITE_TOKEN="bulk-secret")
    page.goto(f"{server.url}/projects/p120/runs?write_token=bulk-secret")
    assert "Runs 1–100 of 120" in page.locator("#runs-count").inner_text()
    for run in (p120[119], p120[118]):
        page.locator(f"#runs-table input[name=run][value='{run}']").check()
    page.get_by_role("button", name="Delete selected…").click()
    page.wait_for_selector("text=Delete 2 runs?")
    assert page.locator(".bulk-delete-list li").all_inner_texts()[0].startswith("run-00119")
    page.get_by_role("button", name="Delete 2 runs").click()
    page.wait_for_url("**/projects/p120/runs")
    assert "of 118" in page.locator("#runs-count").inner_text()
    assert server.requests(r"POST /projects/p120/runs/delete-selected ")[-1].status == 303
    # A page on another origin (same site, another port) posting the form with the cookie
    # is refused, whatever CSRF value it guesses.
    pages, origin = attacker_site
    pages["/attack.html"] = (FORM_ATTACK % {"victim": server.url, "run": p120[0],
                                            "csrf": "0" * 64}).encode()
    page.goto(f"{origin}/attack.html")
    wait_until(page, lambda: server.count(r"POST /projects/p120/runs/delete-selected ") >= 2,
               "the attacker's post in the access log")
    assert server.requests(r"POST /projects/p120/runs/delete-selected ")[-1].status == 403
    page.goto(f"{server.url}/projects/p120/runs")
    assert "of 118" in page.locator("#runs-count").inner_text()
