"""The run comparer and the runs page's column chooser in real Chromium, on a project logged by
trackio's own client (tests/trackio_zoo.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from trackio_zoo import HOSTILE, ZOO

from .conftest import Server

pytestmark = pytest.mark.browser
RUN_COLUMNS = ".compare-table .run-col"


@pytest.fixture(scope="module")
def zoo(zoo_dir, tmp_path_factory):
    """gunicorn over the zoo project; the tests here only read it, so they share one server."""
    server = Server(zoo_dir, tmp_path_factory.mktemp("zoo-logs"))
    yield server
    server.stop()


def page_errors(page) -> list[str]:
    return [m for m in page.console_messages
            if m.startswith(("error", "pageerror")) or "Content Security Policy" in m]


def run_names(page) -> list[str]:
    return page.locator("#runs-table tbody td:nth-child(2) a").all_text_contents()


def test_runs_ticked_on_the_runs_page_open_side_by_side_in_the_comparer(page, zoo):
    page.goto(f"{zoo.url}/projects/{ZOO}/runs")
    page.get_by_label("Compare alpha", exact=True).check()
    page.get_by_label("Compare beta", exact=True).check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(rf"/projects/{ZOO}/compare\?run="))
    expect(page.locator(RUN_COLUMNS)).to_have_text(["beta", "alpha"])
    expect(page.locator('tr[data-key="lr"] td')).to_have_text(["0.02", "0.01"])
    expect(page.locator('tr[data-key="model.depth"] td')).to_have_text(["5", "4"])
    expect(page.locator("#picker-runs input:checked")).to_have_count(2)
    # Ticking a third run in the picker adds its column in place and to the URL.
    page.locator("#picker-runs label", has_text="onerror").locator("input").check()
    expect(page.locator(RUN_COLUMNS)).to_have_count(3)
    expect(page).to_have_url(re.compile(r"(run=[^&]+&?){3}"))
    assert page_errors(page) == []


def test_differences_only_hides_equal_rows_and_search_narrows_keys(page, zoo):
    page.goto(f"{zoo.url}/projects/{ZOO}/compare")
    expect(page.locator(RUN_COLUMNS)).to_have_count(3)
    expect(page.locator('tr[data-key="batch"]')).to_have_count(1)
    page.get_by_label("differences only").check()
    expect(page.locator('tr[data-key="batch"]')).to_have_count(0)  # 32 in every zoo run
    expect(page.locator('tr[data-key="lr"]')).to_have_count(1)
    expect(page).to_have_url(re.compile(r"diff=1"))
    page.reload()
    expect(page.get_by_label("differences only")).to_be_checked()
    expect(page.locator('tr[data-key="batch"]')).to_have_count(0)
    search = page.get_by_placeholder("Search keys")
    search.fill("DEPTH")
    search.press("Enter")
    expect(page.locator("tr[data-key]")).to_have_count(1)
    expect(page.locator("tr[data-key] th")).to_have_text("model.depth")
    expect(page).to_have_url(re.compile(r"q=DEPTH"))
    # "none" in the picker clears the selection; "all" brings every run back.
    page.get_by_role("button", name="none", exact=True).click()
    expect(page.get_by_text("Select runs to compare.")).to_be_visible()
    page.get_by_role("button", name="all", exact=True).click()
    expect(page.locator(RUN_COLUMNS)).to_have_count(3)
    assert page_errors(page) == []


def test_column_chooser_adds_a_config_column_that_the_url_keeps(page, zoo):
    page.goto(f"{zoo.url}/projects/{ZOO}/runs")
    headings = page.locator("#runs-table thead th")
    page.locator("summary", has_text="Columns").click()
    page.get_by_role("button", name="none", exact=True).click()
    expect(headings).to_have_count(6)  # compare, run, created, steps, last step, status
    page.get_by_placeholder("Filter columns").fill("dep")
    expect(page.locator("#column-options label:visible")).to_have_count(1)
    page.get_by_label("model.depth", exact=True).check()
    expect(headings.nth(6)).to_have_text("model.depth")
    expect(page.locator(".chooser")).to_have_attribute("open", "")  # still open to pick more
    expect(page).to_have_url(re.compile(r"col=model\.depth"))
    page.reload()
    expect(headings).to_have_count(7)
    expect(headings.nth(6)).to_have_text("model.depth")
    page.locator("summary", has_text="Columns").click()
    expect(page.get_by_label("model.depth", exact=True)).to_be_checked()
    expect(page.get_by_label("lr", exact=True)).not_to_be_checked()
    page.keyboard.press("Escape")  # the menu closes like a menu
    expect(page.locator("#column-options")).to_be_hidden()
    # Sorting by the chosen column keeps it.
    page.get_by_role("link", name="model.depth").click()
    expect(headings.nth(6)).to_have_text(re.compile(r"model\.depth ↓"))
    assert run_names(page) == [HOSTILE, "beta", "alpha"]  # depth 6, 5, 4
    page.get_by_role("link", name="model.depth").click()
    expect(headings.nth(6)).to_have_text(re.compile(r"model\.depth ↑"))
    assert run_names(page) == ["alpha", "beta", HOSTILE]
    assert page_errors(page) == []


def test_hostile_names_and_values_show_as_text_and_run_nothing(page, zoo):
    page.goto(f"{zoo.url}/projects/{ZOO}/compare")
    expect(page.locator(RUN_COLUMNS).first).to_have_text(HOSTILE)
    expect(page.locator('tr[data-key="note"] td').first).to_have_text(HOSTILE)
    expect(page.locator("#picker-runs .run-name").first).to_have_text(HOSTILE)
    page.get_by_placeholder("Filter runs").fill("<img")
    expect(page.locator("#picker-runs label:visible")).to_have_count(1)
    assert page.query_selector("img[src=x]") is None
    page.goto(f"{zoo.url}/projects/{ZOO}/runs?col=&col=note")
    expect(page.locator("#runs-table tbody tr")).to_have_count(3)
    assert HOSTILE in run_names(page)
    expect(page.locator("#runs-table tbody td", has_text="onerror")).to_have_count(2)  # name, note
    assert page.query_selector("img[src=x]") is None
    assert page.dialogs == []
    assert page.evaluate("() => window.pwned") is None
    assert page_errors(page) == []
