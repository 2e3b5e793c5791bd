"""A phone's width (390 px) in real Chromium: no page scrolls sideways, the run list is a drawer,
the tab bar scrolls on its own, charts stack one per row and tables scroll inside their box."""

from __future__ import annotations

import pytest
from trackio_zoo import ZOO

from .conftest import PAGE_TIMEOUT_MS
from .waiting import wait_until

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
PAGES = ["/", f"/projects/{ZOO}", f"/projects/{ZOO}?cols=6", f"/projects/{ZOO}/runs",
         f"/projects/{ZOO}/runs?col=lr&col=batch&col=model.depth&metric=train/loss",
         f"/projects/{ZOO}/runs/alpha", f"/projects/{ZOO}/media", f"/projects/{ZOO}/histograms",
         f"/projects/{ZOO}/histograms?display=bands", f"/projects/{ZOO}/reports",
         f"/projects/{ZOO}/compare", f"/projects/{ZOO}/traces", f"/projects/{ZOO}/artifacts",
         f"/projects/{ZOO}/files", "/settings", "/projects/no-such-project", "/projects/a.b",
         # The Sweep tab, and the grouped views it shares its parameters with.
         f"/projects/{ZOO}/sweep",
         f"/projects/{ZOO}/sweep?group=config:lr&agg=median&band=ci95&stat=min&metric=train/loss",
         f"/projects/{ZOO}/sweep?group=trackio&axis=lr&axis=batch&axis=model.depth&x=batch",
         f"/projects/{ZOO}/sweep?group=name:^(al)&sel=all&stat=max",
         f"/projects/{ZOO}?group=config:lr&band=std&sel=all",
         f"/projects/{ZOO}?group=config:model.depth&agg=median&band=minmax&hide_group=2"]
WIDEST = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(e => !e.closest('.tabs, .table, .table-scroll, .compare-scroll, .media-strip, .sidebar, '
                          + '.chooser-menu'))
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, has_touch=True)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def settle(page) -> None:
    page.wait_for_function("() => [...document.querySelectorAll('.panel:has(.chart)')]"
                           ".every(p => p.classList.contains('drawn'))")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_page_scrolls_sideways_at_390_px(phone, start_server, zoo_dir, theme):
    server = start_server(zoo_dir)
    wide = {}
    for path in PAGES:
        joiner = "&" if "?" in path else "?"
        phone.goto(f"{server.url}{path}{joiner}__theme={theme}")
        settle(phone)
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            wide[path] = (width, phone.evaluate(WIDEST))
    assert wide == {}


def test_sidebar_is_a_drawer_and_charts_stack(phone, start_server, zoo_dir):
    server = start_server(zoo_dir)
    phone.goto(f"{server.url}/projects/{ZOO}")
    settle(phone)
    assert not phone.is_visible("#sidebar")
    tops = phone.evaluate("[...document.querySelectorAll('.panel')]"
                          ".map(p => Math.round(p.getBoundingClientRect().top))")
    assert len(tops) > 1 and len(set(tops)) == len(tops)  # one chart per row
    phone.click(".drawer-toggle")
    phone.wait_for_selector("#sidebar.open")
    wait_until(phone, lambda: phone.is_visible("#run-list"), "the drawer open")
    assert phone.evaluate("document.activeElement.closest('#sidebar') !== null")
    phone.keyboard.press("Escape")
    wait_until(phone, lambda: not phone.is_visible("#run-list"), "the drawer closed")
    assert phone.evaluate("document.activeElement.classList.contains('drawer-toggle')")
    # The tab bar scrolls by itself, and its last tab can be reached.
    assert phone.evaluate("(() => { const t = document.querySelector('.tabs'); "
                          "return t.scrollWidth > t.clientWidth "
                          "&& getComputedStyle(t).overflowX === 'auto'; })()")
    phone.click(".tabs a:has-text('Compare')")
    phone.wait_for_selector(".compare-table")
