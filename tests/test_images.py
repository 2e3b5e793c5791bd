"""Chart images drawn on the server: types, sizes, titles, legends, 304s, escaping, budgets."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET

import pytest
from builders import ProjectDB

from trackio_flask import create_app
from trackio_flask.image_render import Renderer, RenderError

HOSTILE_RUN = '<script>alert("run")</script>&'
HOSTILE_METRIC = 'x"><svg onload=alert(1)>/loss'
SVG = "{http://www.w3.org/2000/svg}"


def make_app(data_dir, **config):
    app = create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://", **config})
    return app


@pytest.fixture
def app(data_dir):
    app = make_app(data_dir)
    yield app
    if "trackio_images" in app.extensions:
        app.extensions["trackio_images"].close()


@pytest.fixture
def hostile(data_dir):
    db = ProjectDB(data_dir / "h.db")
    db.log_many(HOSTILE_RUN, range(40), lambda s: {HOSTILE_METRIC: 1 / (s + 1)})
    db.log_many("plain", range(40), lambda s: {HOSTILE_METRIC: 2 / (s + 1)})
    yield db
    db.close()


def panel_ids(client, project="p", query=""):
    body = client.get(f"/projects/{project}{query}").data.decode()
    return dict(re.findall(r'<figure class="panel" id="([^"]+)"[^>]*data-metric="([^"]+)"', body))


def svg_texts(body: bytes) -> list[str]:
    root = ET.fromstring(body)  # well-formed XML, or this raises
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", body[16:24])


def test_a_chart_is_an_svg_with_title_legend_axes_and_a_solid_background(client, project_db):
    panel = next(k for k, v in panel_ids(client).items() if v == "train/loss")
    response = client.get(f"/projects/p/chart.svg?panel={panel}")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    texts = svg_texts(response.data)
    assert "train/loss" in texts  # the title
    assert "p · 2 runs" in texts  # the subtitle
    assert {"alpha", "beta"} <= set(texts)  # the legend
    assert "step" in texts  # the x axis title
    root = ET.fromstring(response.data)
    assert int(root.get("width")) >= 560 and int(root.get("height")) >= 300
    background = root.find(f"{SVG}rect")
    assert background.get("fill") == "#ffffff" and background.get("width") == root.get("width")


def test_png_images_follow_theme_and_scale(client, project_db):
    panel = next(iter(panel_ids(client)))
    light = client.get(f"/projects/p/chart.png?panel={panel}")
    assert light.status_code == 200 and light.mimetype == "image/png"
    width, height = png_size(light.data)
    assert width >= 560 and height >= 300
    double = client.get(f"/projects/p/chart.png?panel={panel}&scale=2")
    assert png_size(double.data) == (2 * width, 2 * height)
    dark = client.get(f"/projects/p/chart.svg?panel={panel}&__theme=dark")
    assert ET.fromstring(dark.data).find(f"{SVG}rect").get("fill") == "#18181b"


def test_the_image_follows_the_view_parameters(client, project_db):
    panel = next(k for k, v in panel_ids(client).items() if v == "train/loss")
    only_alpha = client.get(f"/projects/p/chart.svg?panel={panel}&run_ids=id-alpha")
    texts = svg_texts(only_alpha.data)
    assert "alpha" in texts and "beta" not in texts and "p · 1 run" in texts
    smoothed = client.get(f"/projects/p/chart.svg?panel={panel}&smoothing=5")
    assert "smoothing 5" in " ".join(svg_texts(smoothed.data))
    raw = client.get(f"/projects/p/chart.svg?panel={panel}")
    assert smoothed.data.count(b'class="mark-line') == 2 * raw.data.count(
        b'class="mark-line')  # a faint raw line under each smoothed one
    zoomed = client.get(f"/projects/p/chart.svg?panel={panel}&xmin=10&xmax=20")
    assert {"10", "20"} <= set(svg_texts(zoomed.data))  # the axis spans the zoom
    timed = client.get(f"/projects/p/chart.svg?panel={panel}&x_axis=time")
    assert "seconds since start" in svg_texts(timed.data)


def test_the_whole_view_is_one_image_linked_from_the_link_preview(client, project_db):
    body = client.get("/projects/p?smoothing=2").data.decode()
    image = re.search(r'<meta property="og:image" content="([^"]+)"', body).group(1)
    assert image == "http://localhost/projects/p/view.png?smoothing=2"
    assert re.search(r'<meta name="twitter:card" content="summary_large_image">', body)
    assert re.search(r'<meta property="og:title" content="p · trackio_flask">', body)
    description = re.search(r'<meta property="og:description" content="([^"]+)"', body).group(1)
    assert description.startswith("2 runs, 2 charts")
    response = client.get(image.removeprefix("http://localhost"))
    assert response.status_code == 200 and response.mimetype == "image/png"
    width, _ = png_size(response.data)
    assert width >= 1000  # two charts side by side
    texts = svg_texts(client.get("/projects/p/view.svg").data)
    assert {"train/loss", "eval/acc"} <= set(texts)


def test_every_chart_tools_menu_links_its_image(client, project_db):
    body = client.get("/projects/p").data.decode()
    links = re.findall(r'<a href="([^"]+)" data-tool="image-link"', body)
    assert len(links) == len(panel_ids(client)) == 3  # two metrics and a system chart
    for link in links:
        response = client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200 and response.mimetype == "image/svg+xml"


def test_a_chart_whose_runs_logged_nothing_is_drawn_at_its_size_saying_so(client, project_db):
    # beta logged no system metric: its run page still links that chart's images, and both
    # must draw (an empty layer once made an infinitely large SVG and a PNG that failed: 503).
    body = client.get("/projects/p/runs/beta").data.decode()
    links = sorted(set(re.findall(r'href="(/projects/p/chart\.(?:png|svg)\?[^"]*)"', body)))
    assert links
    for link in (link.replace("&amp;", "&") for link in links):
        res = client.get(link)
        assert res.status_code == 200, (link, res.data[:200])
        if link.startswith("/projects/p/chart.svg"):
            root = ET.fromstring(res.data)
            assert float(root.get("width")) < 2000 and float(root.get("height")) < 2000, link
    empty = [link for link in links if "chart.svg" in link
             and "logged no point" in " ".join(svg_texts(client.get(link.replace("&amp;", "&")).data))]
    assert empty, "the system chart of a run without system metrics says why it is empty"


def test_revalidation_answers_304_until_the_project_changes(client, project_db):
    panel = next(iter(panel_ids(client)))
    url = f"/projects/p/chart.png?panel={panel}"
    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=0, s-maxage=1"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    project_db.log("alpha", 50, {"train/loss": 0.001, "eval/acc": 1.0})
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_hostile_names_are_text_in_the_svg(client, hostile):
    panel = next(iter(panel_ids(client, "h")))
    response = client.get(f"/projects/h/chart.svg?panel={panel}")
    assert response.status_code == 200
    assert b"<script" not in response.data and b"onload" not in response.data.replace(
        b"onload=alert", b"")  # the only onload is inside escaped text
    texts = svg_texts(response.data)  # parses: nothing broke out of its element
    assert HOSTILE_RUN in texts and HOSTILE_METRIC in texts
    root = ET.fromstring(response.data)
    assert not root.findall(f".//{SVG}script") and not [
        e for e in root.iter() if any(k.lower().startswith("on") for k in e.attrib)]


def test_a_cookie_makes_an_image_private(client, project_db):
    panel = next(iter(panel_ids(client)))
    client.set_cookie("session", "x")
    response = client.get(f"/projects/p/chart.svg?panel={panel}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize(("url", "status"), [
    ("/projects/p/chart.svg?panel=nope", 400),
    ("/projects/p/chart.gif?panel=x", 404),
    ("/projects/p/chart.png?panel={panel}&scale=9", 400),
    ("/projects/p/chart.svg?panel={panel}&smoothing=abc", 400),
    ("/projects/nope/chart.svg?panel=x", 404),
    ("/projects/p/view.svg?metric_filter=nothing-matches", 404),
])
def test_bad_requests_get_a_clear_4xx(client, project_db, url, status):
    panel = next(iter(panel_ids(client)))
    response = client.get(url.format(panel=panel))
    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"


def test_only_draws_spend_the_image_budget(data_dir, project_db):
    app = make_app(data_dir, RATELIMIT_IMAGES="2 per minute")
    try:
        client = app.test_client()
        panels = list(panel_ids(client))
        first = f"/projects/p/chart.svg?panel={panels[0]}"
        assert client.get(first).status_code == 200
        for _ in range(5):  # cached: no draw, no cost
            assert client.get(first).status_code == 200
        assert client.get(f"/projects/p/chart.svg?panel={panels[1]}").status_code == 200
        refused = client.get(f"/projects/p/chart.png?panel={panels[1]}")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    finally:
        app.extensions["trackio_images"].close()


def test_a_render_past_its_deadline_is_stopped_and_the_next_one_works():
    spec = {"data": {"values": [{"x": i, "y": i} for i in range(10)]}, "mark": "line",
            "encoding": {"x": {"field": "x", "type": "quantitative"},
                         "y": {"field": "y", "type": "quantitative"}}}
    hurried = Renderer(wall_s=0.001)  # the renderer's start alone takes longer
    with pytest.raises(RenderError, match="longer than"):
        hurried.render(spec, "svg")
    hurried.wall_s = 60
    assert hurried.render(spec, "svg").startswith(b"<svg")
    hurried.close()


def test_a_badge_shows_a_runs_latest_or_best_value(client, project_db):
    latest = client.get("/projects/p/badge.svg?run=alpha&metric=train/loss")
    assert latest.status_code == 200 and latest.mimetype == "image/svg+xml"
    assert latest.headers["Cache-Control"].startswith("public")
    texts = svg_texts(latest.data)
    assert "train/loss" in texts and "0.02" in texts  # 1 / 50, the last of 50 steps
    best = svg_texts(client.get("/projects/p/badge.svg?run=alpha&metric=train/loss&stat=best").data)
    assert "train/loss (best)" in best and "0.02" in best  # a loss: lower is better
    best_acc = svg_texts(client.get("/projects/p/badge.svg?run=alpha&metric=eval/acc&stat=best").data)
    assert "0.98" in best_acc  # an accuracy: higher is better
    labelled = client.get("/projects/p/badge.svg?run=alpha&metric=eval/acc&stat=min&label=acc"
                          "&color=green")
    assert "acc" in svg_texts(labelled.data) and b'fill="#4c1"' in labelled.data
    etag = latest.headers["ETag"]
    again = client.get("/projects/p/badge.svg?run=alpha&metric=train/loss",
                       headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_a_badge_escapes_every_text(client, hostile):
    response = client.get("/projects/h/badge.svg", query_string={
        "run": HOSTILE_RUN, "metric": HOSTILE_METRIC, "label": '</text><script>x</script>"'})
    assert response.status_code == 200
    root = ET.fromstring(response.data)
    assert not root.findall(f".//{SVG}script")
    assert '</text><script>x</script>"' in svg_texts(response.data)
    default_label = client.get("/projects/h/badge.svg", query_string={
        "run": HOSTILE_RUN, "metric": HOSTILE_METRIC})
    assert HOSTILE_METRIC in svg_texts(default_label.data)
    assert b"<svg onload" not in default_label.data


@pytest.mark.parametrize(("query", "status"), [
    ("run=alpha&metric=nope", 404), ("run=nobody&metric=train/loss", 404),
    ("run=alpha&metric=train/loss&stat=median", 400),
    ("run=alpha&metric=train/loss&color=red%22%20onload%3D%22x", 400),
])
def test_bad_badge_requests_get_a_clear_4xx(client, project_db, query, status):
    response = client.get(f"/projects/p/badge.svg?{query}")
    assert response.status_code == status


def test_a_draw_past_the_deadline_is_a_503_with_retry_after(data_dir, project_db):
    app = make_app(data_dir, IMAGE_TIMEOUT_S=0.001)  # the renderer's own start takes longer
    try:
        client = app.test_client()
        panel = next(iter(panel_ids(client)))
        response = client.get(f"/projects/p/chart.svg?panel={panel}")
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
        assert response.headers["Cache-Control"] == "no-store"
        assert b"longer than" in response.data
    finally:
        app.extensions["trackio_images"].close()
