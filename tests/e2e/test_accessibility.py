"""WCAG 2.1 A/AA on every page, in both themes, audited by axe-core (vendored for tests only,
tests/e2e/vendor/), plus keyboard use of the controls a mouse would use."""

from __future__ import annotations

from pathlib import Path

import pytest
from trackio_zoo import ZOO

from .waiting import wait_until

pytestmark = pytest.mark.browser
AXE = Path(__file__).with_name("vendor") / "axe-core-4.14.1.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PAGES = ["/", f"/projects/{ZOO}", f"/projects/{ZOO}/runs", f"/projects/{ZOO}/runs/alpha",
         f"/projects/{ZOO}/media", f"/projects/{ZOO}/histograms", f"/projects/{ZOO}/reports",
         f"/projects/{ZOO}/compare", f"/projects/{ZOO}/traces", f"/projects/{ZOO}/artifacts",
         f"/projects/{ZOO}/files", "/settings", "/projects/no-such-project"]
AUDIT = """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}}).then(result =>
  result.violations.map(v => ({id: v.id, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + n.failureSummary)})))"""


def settle(page) -> None:
    """Charts drawn (their legends and axis titles are in the DOM) and fonts loaded."""
    page.wait_for_function("() => [...document.querySelectorAll('.panel:has(.chart)')]"
                           ".every(p => p.classList.contains('drawn'))")
    page.evaluate("document.fonts.ready.then(() => true)")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_passes_the_wcag_aa_audit(page, start_server, zoo_dir, theme):
    server = start_server(zoo_dir)
    source = AXE.read_text()
    found = {}
    for path in PAGES:
        page.goto(f"{server.url}{path}?__theme={theme}")
        settle(page)
        page.evaluate(source)  # through the debugger protocol: the page's CSP stays as it is
        violations = page.evaluate(AUDIT, TAGS)
        if violations:
            found[path] = violations
    assert found == {}


def test_keyboard_reaches_and_works_every_metrics_control(page, start_server, zoo_dir):
    server = start_server(zoo_dir)
    page.goto(f"{server.url}/projects/{ZOO}")
    settle(page)
    # Tab walks through the controls in order; each named control is reachable.
    reached = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("() => { const e = document.activeElement; "
                                  "return e.name || e.id || e.dataset.tool || e.className || e.tagName; }"))
    for control in ("run_filter", "latest_only", "run_ids", "metric_filter", "x_axis", "log_y",
                    "smoothing", "smoother", "cols", "theme-toggle", "fullscreen"):
        assert control in reached, (control, sorted(reached))
    # Space on a run box applies it in place, like a click.
    box = page.locator("#run-list input[type=checkbox]").first
    box.focus()
    page.keyboard.press("Space")
    wait_until(page, lambda: page.evaluate("window.trackioFlask.stats.apply.length") >= 1
               and not page.evaluate("window.trackioControls.busy()"), "the change applied")
    assert page.evaluate("document.activeElement.name") == "run_ids"  # focus kept after the swap
    # The download menu opens from the keyboard and Esc closes it.
    menu = page.locator(".panel summary.tool").first
    menu.focus()
    page.keyboard.press("Enter")
    assert page.locator(".panel details.tool-menu[open]").count() == 1
    page.keyboard.press("Escape")
    assert page.locator(".panel details.tool-menu[open]").count() == 0
    # The theme switch works from the keyboard.
    before = page.get_attribute("html", "data-theme")
    page.focus("#theme-toggle")
    page.keyboard.press("Enter")
    wait_until(page, lambda: page.get_attribute("html", "data-theme") != before, "the theme switched")
