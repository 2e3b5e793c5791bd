"""Group bands and the Sweep tab in real Chromium: a group's band lies between its members'
min and max (read from the Vega view's data), the group control, toggling a group from the
legend, brushing a parallel-coordinates axis selects runs; hostile names run no script."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sweep_zoo import RUNS, STEPS, SWEEP, log_sweep, loss

from .waiting import wait_until

pytestmark = pytest.mark.browser

# A panel's drawn rows: the lines (pts) and the bands (band), by series name.
ROWS = """(metric) => {
  const panel = document.querySelector(`.panel[data-metric="${metric}"]`);
  const entry = panel && window.trackioFlask.views.get(panel.id);
  if (!entry || !entry.view) return null;
  const rows = name => entry.view.data(name).map(r => ({n: r.n, x: r.x, y: r.y, lo: r.lo, hi: r.hi}));
  return {id: panel.id, pts: rows('pts'), band: rows('band')};
}"""


@pytest.fixture
def sweep_server(data_dir, start_server):
    log_sweep(data_dir)
    return start_server(data_dir)


def wait_drawn(page):
    page.wait_for_function("() => document.querySelectorAll('.panel').length > 0 && "
                           "[...document.querySelectorAll('.panel')]"
                           ".every(p => p.classList.contains('drawn'))")


def test_group_band_lies_between_its_members_min_and_max(page, sweep_server):
    page.goto(f"{sweep_server.url}/projects/{SWEEP}?group=config:lr")
    wait_drawn(page)
    drawn = wait_until(page, lambda: page.evaluate(ROWS, "loss"), "the loss chart's data")
    band = [row for row in drawn["band"] if row["n"] == "0.001 (n=3)"]
    assert [row["x"] for row in band] == list(STEPS)
    offsets = [RUNS[f"lr1-seed{i}"][3] for i in range(3)]
    for row in band:
        members = [loss(offset, row["x"]) for offset in offsets]
        assert row["lo"] == pytest.approx(min(members), abs=1e-4)
        assert row["hi"] == pytest.approx(max(members), abs=1e-4)
        assert row["lo"] <= row["y"] <= row["hi"]
    # One line per group (not per run), each named with its size in the legend.
    assert {row["n"] for row in drawn["pts"]} == {
        "0.001 (n=3)", "0.0003 (n=3)", "lr9-<img src=x onerror=alert(1)>".split("-", 1)[1] + " (n=1)"}
    legend = page.locator(f"#{drawn['id']} .legend-item")
    assert "0.001 (n=3)" in legend.all_inner_texts()
    # Clicking a group in the legend shows that whole group only; again: every group.
    page.locator(f"#{drawn['id']} .legend-item", has_text="0.0003 (n=3)").click()
    wait_until(page, lambda: {r["n"] for r in page.evaluate(ROWS, "loss")["pts"]}
               == {"0.0003 (n=3)"}, "only the clicked group drawn")
    page.locator(f"#{drawn['id']} .legend-item", has_text="0.0003 (n=3)").click()
    wait_until(page, lambda: len({r["n"] for r in page.evaluate(ROWS, "loss")["pts"]}) == 3,
               "every group drawn again")
    assert page.dialogs == []


def test_group_control_applies_in_place_and_puts_the_grouping_in_the_address(page, sweep_server):
    page.goto(f"{sweep_server.url}/projects/{SWEEP}")
    wait_drawn(page)
    assert len({r["n"] for r in page.evaluate(ROWS, "loss")["pts"]}) == 7  # a line per run
    page.select_option("#group-select", "config:model.depth")
    wait_until(page, lambda: "group=" in page.url, "the grouping in the address")
    assert parse_qs(urlsplit(page.url).query)["group"] == ["config:model.depth"]
    wait_until(page, lambda: {r["n"] for r in (page.evaluate(ROWS, "loss") or {"pts": []})["pts"]}
               == {"4 (n=3)", "8 (n=3)", "<img src=x onerror=alert(1)> (n=1)"},
               "a line per depth group")
    page.select_option("select[name=band]", "std")
    wait_until(page, lambda: parse_qs(urlsplit(page.url).query).get("band") == ["std"],
               "the band choice in the address")
    assert page.dialogs == []
    assert not [m for m in page.console_messages if m.startswith(("error", "pageerror"))]
