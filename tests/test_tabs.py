"""Project tabs: every page listed, empty ones greyed (hidden on narrow screens by CSS); the
version under the logo; the view island every page carries for trackio's handshake; the
sidebar's share and embed box."""

from __future__ import annotations

import html
import json
import re

from trackio_pages_zoo import PAGES
from trackio_zoo import HOSTILE

from trackio_flask import _version, create_app


def tabs(body: str) -> list[tuple[str, str]]:
    nav = re.search(r'<nav class="tabs"[^>]*>(.*?)</nav>', body, re.S).group(1)
    return [("active" if "active" in attrs else "empty" if "empty" in attrs else "", label)
            for attrs, label in re.findall(r"<a ([^>]*)>([^<]+)</a>", nav)]


def test_tabs_list_every_page_and_grey_out_the_empty_ones(pages_client):
    assert tabs(pages_client.get(f"/projects/{PAGES}/traces").data.decode()) == [
        ("", "Metrics"), ("", "Runs"), ("active", "Traces"), ("", "Media &amp; Tables"),
        ("empty", "Histograms"), ("empty", "Alerts &amp; Reports"), ("", "Compare"),
        ("empty", "Sweep"), ("", "Artifacts"), ("", "Files"), ("", "Settings")]


def test_an_empty_tab_is_still_shown_on_its_own_page(app, project_db):
    body = app.test_client().get("/projects/p/traces").data.decode()
    states = dict((label, state) for state, label in tabs(body))
    assert states["Traces"] == "active"
    assert states["Artifacts"] == "empty" and states["Files"] == "empty"
    assert 'title="Artifacts is empty for this project"' in body


def test_the_version_is_under_the_logo(pages_client):
    body = pages_client.get("/").data.decode()
    assert f'<span class="brand-version">v{_version.__version__}</span>' in body


def island(body: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="trackio-view">(.*?)'
                                r"</script>", body, re.S).group(1))


def test_every_page_carries_its_view_for_the_handshake(pages_client):
    state = island(pages_client.get(f"/projects/{PAGES}").data.decode())
    assert state["page"] == "metrics" and state["project"] == PAGES
    assert sorted(run["name"] for run in state["runs"]) == ["consumer " + HOSTILE, "producer"]
    producer = next(r["id"] for r in state["runs"] if r["name"] == "producer")
    one = island(pages_client.get(f"/projects/{PAGES}?run_ids={producer}").data.decode())
    assert one["runs"] == [{"name": "producer", "id": producer}]
    assert island(pages_client.get(f"/projects/{PAGES}/artifacts").data.decode())["page"] == "artifacts"
    assert island(pages_client.get("/").data.decode()) == {"page": "projects", "project": None,
                                                     "space_id": None, "runs": []}


def test_the_island_cannot_be_closed_by_a_run_name(pages_client):
    body = pages_client.get(f"/projects/{PAGES}").data.decode()
    raw = re.search(r'id="trackio-view">(.*?)</script>', body, re.S).group(1)
    assert "<" not in raw and "\\u003cimg" in raw


def test_the_sidebar_offers_a_share_link_and_embed_snippets_per_chart(pages_client):
    body = pages_client.get(f"/projects/{PAGES}?smoothing=5").data.decode()
    box = re.search(r'<details class="share-box" id="share-box">(.*?)</details>', body, re.S)
    assert box, "no share box in the sidebar"
    share = html.unescape(re.search(r'id="share-url"[^>]*value="([^"]+)"', box.group(1)).group(1))
    assert share == f"http://localhost/projects/{PAGES}?smoothing=5"
    code = html.unescape(re.search(r'<textarea id="embed-code"[^>]*>(.*?)</textarea>',
                                   box.group(1), re.S).group(1))
    src = html.unescape(re.search(r'<iframe src="([^"]+)"', code).group(1))
    assert src == "http://localhost/projects/pages?smoothing=5&sidebar=hidden&navbar=hidden"
    charts = re.findall(r'<option value="([^"]+)">chart: ', box.group(1))
    assert "train/loss" in charts and "eval/acc" in charts
    # Embedded views (sidebar hidden) carry no share box.
    assert "share-box" not in pages_client.get(f"/projects/{PAGES}?sidebar=hidden").data.decode()


def test_greying_the_traces_tab_reads_no_trace(pages_dir):
    """The tabs on the metrics page (every project's hot page) only ask whether a trace exists:
    the Traces list's index (every trace's summary) is built when the Traces page needs it."""
    app = create_app({"DATA_DIR": pages_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"})
    client = app.test_client()
    assert dict((label, state) for state, label in tabs(
        client.get(f"/projects/{PAGES}").data.decode()))["Traces"] == ""
    store = app.extensions.get("trackio_traces")
    assert store is None or not store._indexes, "the metrics page built the trace index"
    assert client.get(f"/projects/{PAGES}/traces").status_code == 200
    assert app.extensions["trackio_traces"]._indexes
