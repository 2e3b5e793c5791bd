"""Histograms and Alerts & Reports in real Chromium, on a project logged by trackio's client."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from trackio_zoo import HOSTILE, ZOO, log_more, log_zoo

from .waiting import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture
def live_zoo_dir(tmp_path):
    """A zoo project of this test's own, for a test that logs more to it."""
    data_dir = tmp_path / "zoo-live"
    data_dir.mkdir()
    log_zoo(data_dir)
    return data_dir


def inert(page) -> None:
    """Hostile strings did nothing: no dialog, no script ran, no element was injected."""
    assert page.dialogs == []
    assert page.evaluate("() => window.pwned === undefined")
    assert page.locator("img[src='x']").count() == 0
    assert [m for m in page.console_messages
            if m.startswith(("error", "pageerror")) or "Content Security Policy" in m] == []


def test_histograms_page_draws_latest_and_ridges_and_follows_the_url(page, start_server, zoo_dir):
    server = start_server(zoo_dir)
    page.goto(f"{server.url}/projects/{ZOO}/histograms")
    expect(page.locator(".hist-key-name")).to_have_text(["weights"])
    expect(page.locator(".hist-latest .hist-line")).to_have_count(3)
    ridges = page.locator(".hist-ridge")
    expect(ridges).to_have_count(3)
    for index in range(3):
        steps = ridges.nth(index).locator(".ridge-row").evaluate_all(
            "rows => rows.map(r => r.dataset.step)")
        assert steps == ["0", "10", "20"]
    names = page.locator(".hist-latest .hist-run").all_inner_texts()
    assert sorted(names) == sorted(["alpha", "beta", HOSTILE])
    box = page.locator(".hist-latest svg").bounding_box()
    assert box["width"] > 200 and box["height"] > 50
    inert(page)

    page.select_option("select[name=display]", "bands")
    page.wait_for_url("**display=bands**")
    expect(page.locator(".hist-bands")).to_have_count(3)
    expect(page.locator(".hist-ridge")).to_have_count(0)

    page.locator(".run", has_text="beta").locator("input").uncheck()
    page.wait_for_url("**sel=**")
    expect(page.locator(".hist-bands")).to_have_count(2)
    assert "beta" not in page.locator(".hist-latest .hist-run").all_inner_texts()
    assert page.locator("#poller").count() == 1
    inert(page)


def test_reports_page_shows_alerts_and_markdown_as_text_and_filters_by_level(
        page, start_server, zoo_dir):
    server = start_server(zoo_dir)
    page.goto(f"{server.url}/projects/{ZOO}/reports")
    rows = page.locator(".alert-row")
    expect(rows).to_have_count(6)  # per run: one spike (error or warn) and one "all good"
    titles = page.locator(".alert-title").all_inner_texts()
    assert titles.count("loss spike " + HOSTILE) == 3 and titles.count("all good") == 3
    expect(page.locator(".report-run")).to_have_count(3)
    expect(page.locator(".markdown h1", has_text="Report for alpha")).to_have_count(1)
    expect(page.locator(".markdown em", has_text="fine")).to_have_count(3)
    assert page.locator(".markdown h1").all_inner_texts().count("Report for " + HOSTILE) == 1
    assert page.locator("a[href^='javascript']").count() == 0
    assert "[link](javascript:alert(1))" in page.locator(".markdown").first.inner_text()
    inert(page)

    page.locator("label.level-choice", has_text="info").locator("input").uncheck()
    page.wait_for_url("**level=**")
    expect(rows).to_have_count(3)
    levels = rows.evaluate_all("rows => rows.map(r => r.dataset.level)")
    assert sorted(levels) == ["error", "warn", "warn"]
    expect(page.locator("label.level-choice", has_text="info").locator("input")).not_to_be_checked()
    inert(page)


def test_a_new_alert_appears_without_reload(page, start_server, live_zoo_dir):
    server = start_server(live_zoo_dir)
    page.goto(f"{server.url}/projects/{ZOO}/reports?level=error")
    expect(page.locator(".alert-row")).to_have_count(1)
    page.evaluate("window.__samePage = true")
    log_more(live_zoo_dir, "trackio.alert('late alert', text='x', "
                           "level=trackio.AlertLevel.ERROR)")
    expect(page.locator(".alert-title", has_text="late alert")).to_have_count(1)
    expect(page.locator(".alert-row")).to_have_count(2)
    assert page.locator(".alert-title").first.inner_text() == "late alert"  # newest first
    assert page.evaluate("() => window.__samePage === true")
    assert page.locator("#poller").count() == 1 and page.locator("[data-poll]").count() == 1
    # The swapped-in poller keeps polling.
    polled = server.count(r"/reports/refresh")
    wait_until(page, lambda: server.count(r"/reports/refresh") > polled, "a poll after the swap")
    inert(page)
