"""Sharing in real Chromium: a chart's image link carries the chart's zoom and opens an image
drawn by the server; the page's link preview points at an image that loads."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser

POINT = """([metric, x]) => {
  const panel = document.querySelector('.panel[data-metric="' + metric + '"]');
  const view = window.trackioFlask.views.get(panel.id).view;
  const box = view.container().querySelector('canvas').getBoundingClientRect();
  const [ox, oy] = view.origin();
  return {x: box.left + ox + view.scale('x')(x), y: box.top + oy + view.height() / 2};
}"""


def wait_drawn(page) -> None:
    page.wait_for_function("() => document.querySelectorAll('.panel').length > 0 && "
                           "[...document.querySelectorAll('.panel')]"
                           ".every(p => p.classList.contains('drawn'))")


def test_the_image_link_follows_the_zoom_and_opens_the_drawn_chart(page, start_server,
                                                                   data_dir, project_db):
    server = start_server(data_dir)
    page.goto(f"{server.url}/projects/p")
    wait_drawn(page)
    a = page.evaluate(POINT, ["train/loss", 10])
    b = page.evaluate(POINT, ["train/loss", 30])
    page.mouse.move(a["x"], a["y"])
    page.mouse.down()
    page.mouse.move(b["x"], b["y"], steps=6)
    page.mouse.up()
    page.wait_for_function("() => window.trackioFlask.zoom() !== null")
    low, high = page.evaluate("window.trackioFlask.zoom()")

    panel = page.locator('.panel[data-metric="train/loss"]')
    panel.locator("details.tool-menu summary").click()
    with page.context.expect_page() as opened:
        panel.locator("[data-tool=image-link]").click()
    image = opened.value
    image.wait_for_load_state()
    query = parse_qs(urlparse(image.url).query)
    assert urlparse(image.url).path == "/projects/p/chart.svg"
    assert float(query["xmin"][0]) == pytest.approx(low) and \
        float(query["xmax"][0]) == pytest.approx(high)
    # Chromium shows the SVG itself: its title and both runs' legend entries are in it.
    texts = image.locator("text").all_text_contents()
    assert "train/loss" in texts and {"alpha", "beta"} <= set(texts)
    image.close()

    content = page.content()
    preview = re.search(r'<meta property="og:image" content="([^"]+)"', content).group(1)
    answer = page.request.get(preview)
    assert answer.status == 200 and answer.headers["content-type"] == "image/png"
    errors = [m for m in page.console_messages if m.startswith(("error", "pageerror"))]
    assert errors == []


VERTICES = """box => Array.from(box.querySelectorAll('.mark-line path'))
  .reduce((n, p) => n + (p.getAttribute('d') || '').split(/[ML]/).length - 1, 0)"""


def test_zooming_an_exported_snapshot_draws_every_logged_point_up_to_the_cap(page, data_dir,
                                                                            tmp_path):
    from builders import ProjectDB

    from trackio_flask import cli

    db = ProjectDB(data_dir / "big.db")
    db.log_many("alpha", range(4000), lambda s: {"train/loss": 1 / (s + 1) + (s % 7) / 100,
                                                 "eval/acc": (s % 11) / 11})
    db.log_many("beta", range(4000), lambda s: {"train/loss": 2 / (s + 1) + (s % 5) / 100})
    db.close()
    out = tmp_path / "big.html"
    # 12,000 logged points in all: the cap leaves room for one chart's every point.
    assert cli.main(["export", "big", "--dir", str(data_dir), "-o", str(out),
                     "--max-points", "9000"]) == 0
    page.goto(out.as_uri())
    page.wait_for_function("document.querySelectorAll('.chart[data-drawn]').length === 2")
    assert "for 1 of 2 line charts (the cap of 9,000 points" in page.locator("p").inner_text()
    fine = page.locator('.chart[data-fine="1"]')
    assert fine.count() == 1
    overview = fine.evaluate(VERTICES)
    box = fine.locator("svg").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(4):  # wheel up: zoom in around the pointer, well past half the range
        page.mouse.wheel(0, -600)
    # The overview drew a few hundred points a line; zoomed in, the logged ones near the view.
    page.wait_for_function(f"(box => ({VERTICES})(box) > {2 * overview})",
                           arg=fine.element_handle())
    index = page.evaluate("Array.from(document.querySelectorAll('.chart'))"
                          ".findIndex(c => c.dataset.fine === '1')")
    low, high = page.evaluate(f"window.exportViews[{index}].scale('x').domain()")
    assert high - low < 2000
    assert [m for m in page.console_messages if m.startswith(("error", "pageerror"))] == []
