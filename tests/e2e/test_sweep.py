"""Group bands and the Sweep tab in real Chromium: a group's band lies between its members'
min and max (read from the Vega view's data), the group control, toggling a group from the
legend, brushing a parallel-coordinates axis selects runs; hostile names run no script."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sweep_zoo import HOSTILE, RUNS, STEPS, SWEEP, log_sweep, loss

from .waiting import wait_until

pytestmark = pytest.mark.browser

# The run keys the address's selection token names (the page's own decoder: tests in
# test_sweeps_scale.py hold it to Python's), mapped through the lines' creation indices.
SELECTED_KEYS = """() => {
  const sel = new URL(location.href).searchParams.get('sel');
  if (!sel) return [];
  const token = window.trackioControls.parseToken(sel);
  return [...document.querySelectorAll('.pc-line')]
    .filter(line => token.picked[+line.dataset.i]).map(line => line.dataset.key);
}"""

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
    # A group's box hides the whole group (in the address too), and shows it again.
    chip = page.locator(".group-chip", has_text="0.001").locator(".group-toggle")
    chip.uncheck()
    wait_until(page, lambda: parse_qs(urlsplit(page.url).query).get("hide_group") == ["0.001"],
               "the hidden group in the address")
    wait_until(page, lambda: {r["n"] for r in page.evaluate(ROWS, "loss")["pts"]} == {
        "0.0003 (n=3)", "<img src=x onerror=alert(1)> (n=1)"}, "the group's line and band gone")
    assert not [r for r in page.evaluate(ROWS, "loss")["band"] if r["n"].startswith("0.001")]
    page.locator(".group-chip", has_text="0.001").locator(".group-toggle").check()
    wait_until(page, lambda: "hide_group" not in page.url, "the group shown again")
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


def drag_along_axis(page, name: str, start: float, end: float) -> None:
    """Drag on the named parallel-coordinates axis between two fractions of its height
    (0 = bottom, 1 = top), as a person brushes."""
    area = page.locator(f".pc-brush-area[data-name='{name}']")
    box = area.bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * (1 - start))
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] * (1 - end), steps=8)
    page.mouse.up()


def test_brushing_a_parallel_coordinates_axis_selects_runs_for_every_tab(page, sweep_server):
    page.goto(f"{sweep_server.url}/projects/{SWEEP}/sweep")
    assert page.text_content("#sweep-count") == "All"
    # last(loss) runs from 0.5 to 5.0: the bottom fifth holds the three lr=0.001 runs.
    drag_along_axis(page, "last(loss)", 0.0, 0.2)
    lr1 = {f"id-lr1-seed{i}" for i in range(3)}
    wait_until(page, lambda: "sel=" in page.url, "the selection in the address")
    assert set(page.evaluate(SELECTED_KEYS)) == lr1
    assert page.text_content("#sweep-count") == "3"
    assert sorted(page.locator("#sweep-selected li").all_inner_texts()) == [
        f"lr1-seed{i}" for i in range(3)]
    assert page.locator(".pc-line:not(.off)").count() == 3
    # A second axis narrows it: depth 4 only (the lower of the depth values).
    drag_along_axis(page, "model.depth", 0.0, 0.3)
    wait_until(page, lambda: page.text_content("#sweep-count") == "2", "two runs of depth 4")
    assert set(page.evaluate(SELECTED_KEYS)) == {"id-lr1-seed0", "id-lr1-seed2"}
    # The Metrics tab opens with that selection.
    metrics_link = page.locator("nav.tabs a", has_text="Metrics")
    wait_until(page, lambda: "sel=" in (metrics_link.get_attribute("href") or ""),
               "the tab link carrying the selection")
    metrics_link.click()
    page.wait_for_url(f"**/projects/{SWEEP}?**")
    ticked = page.locator("#run-list input[name=run_ids]:checked")
    wait_until(page, lambda: ticked.count() == 2, "two runs ticked on Metrics")
    assert page.dialogs == []


def test_clicking_an_axis_clears_its_range_and_hostile_names_stay_text(page, sweep_server):
    page.goto(f"{sweep_server.url}/projects/{SWEEP}/sweep")
    drag_along_axis(page, "last(loss)", 0.9, 1.0)  # the top: the hostile run alone (5.0)
    wait_until(page, lambda: page.text_content("#sweep-count") == "1", "one run selected")
    assert page.locator("#sweep-selected li").all_inner_texts() == [
        "lr9-<img src=x onerror=alert(1)>"]
    assert page.locator("#sweep-selected img").count() == 0
    area = page.locator(".pc-brush-area[data-name='last(loss)']").bounding_box()
    page.mouse.click(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
    wait_until(page, lambda: "sel=" not in page.url, "the selection cleared")
    assert page.text_content("#sweep-count") == "All"
    # The keyboard brushes too: the first ↓ makes a range over the middle fifth of the axis
    # (lr's middle value, 0.001), five more move it down to 0.0003.
    def selected():
        return set(page.evaluate(SELECTED_KEYS))

    page.focus(".pc-brush-area[data-name='lr']")
    page.keyboard.press("ArrowDown")
    wait_until(page, lambda: selected() == {f"id-lr1-seed{i}" for i in range(3)},
               "the lr=0.001 runs")
    for _ in range(5):
        page.keyboard.press("ArrowDown")
    wait_until(page, lambda: selected() == {f"id-lr3-seed{i}" for i in range(3)},
               "the lr=0.0003 runs")
    page.keyboard.press("Escape")
    wait_until(page, lambda: "sel=" not in page.url, "Esc clears the range")
    # Grouping by the hostile config key: its values name groups in legends, as text.
    page.goto(f"{sweep_server.url}/projects/{SWEEP}?group=config:{quote(HOSTILE)}")
    wait_drawn(page)
    names = wait_until(page, lambda: {r["n"] for r in page.evaluate(ROWS, "loss")["pts"]},
                       "the hostile key's groups drawn")
    assert f"{HOSTILE} (n=3)" in names
    assert page.locator(".legend img").count() == 0
    assert page.dialogs == []
    assert not [m for m in page.console_messages if m.startswith(("error", "pageerror"))]


def test_a_grouped_chart_takes_new_steps_as_a_delta_without_a_redraw(page, sweep_server,
                                                                     data_dir):
    import sqlite3

    from builders import stamp
    page.goto(f"{sweep_server.url}/projects/{SWEEP}?group=config:lr")
    wait_drawn(page)
    wait_until(page, lambda: page.evaluate(ROWS, "loss"), "the loss chart's data")
    # A mark on the chart's view: a reload makes a new one.
    page.evaluate("""() => { const p = document.querySelector('.panel[data-metric="loss"]');
                             window.trackioFlask.views.get(p.id).view.__mark = 'same chart'; }""")
    with sqlite3.connect(data_dir / f"{SWEEP}.db", isolation_level=None) as conn:
        for run, value in (("lr1-seed0", 100.0), ("lr1-seed1", 50.0)):
            conn.execute("INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                         "VALUES (?, ?, ?, ?, ?)", (f"id-{run}", stamp(500), run, 20,
                                                    f'{{"loss": {value}}}'.encode()))

    def group_rows():
        drawn = page.evaluate(ROWS, "loss")
        return [r for r in drawn["band"] if r["n"] == "0.001 (n=3)"] if drawn else []

    wait_until(page, lambda: any(r["x"] == 20 for r in group_rows()), "the group's new step")
    rows = group_rows()
    assert [r["x"] for r in rows] == [*STEPS, 20]  # appended once, nothing lost or repeated
    # Step 20: the mean of the two members that logged it, the band their min and max (the
    # third member's line ends at step 19).
    assert (rows[-1]["y"], rows[-1]["lo"], rows[-1]["hi"]) == pytest.approx((75.0, 50.0, 100.0))
    assert page.evaluate("""() => { const p = document.querySelector('.panel[data-metric="loss"]');
                                    return window.trackioFlask.views.get(p.id).view.__mark; }"""
                         ) == "same chart"
    # The poll's answer was a delta the page merged (the two groups that moved, a point each),
    # not the whole chart again.
    applied = page.evaluate("window.trackioFlask.stats.delta")
    assert any(entry["charts"] >= 1 and entry["points"] >= 1 for entry in applied)
