"""The Media & Tables page: sections per key, paging, order, step sliders, tables, live polls."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from builders import ProjectDB
from helpers import poll_url
from trackio_zoo import HOSTILE, ZOO

from trackio_flask import caching, create_app
from trackio_flask.gallery import MAX_CARDS, key_id

IMAGE_KEY = "samples/image"


def image(run: str, step: int, caption: str | None = None) -> dict:
    return {"_type": "trackio.image", "file_path": f"p/{run}/{step}/img.png",
            "caption": caption if caption is not None else f"{run} image {step}"}


def table(rows: list[dict]) -> dict:
    return {"_type": "trackio.table", "_value": rows}


def section_of(body: str, key: str) -> str:
    """The HTML of one key's section."""
    start = body.index(f'id="k-{key_id(key)}"')
    end = body.find("<section", start)
    return body[start:end if end >= 0 else len(body)]


def grid_captions(body: str, key: str = IMAGE_KEY) -> list[str]:
    """Captions of the images in a key's entry grid (or a load-more answer), in page order."""
    marker = f'id="g-{key_id(key)}"'
    part = body[body.index(marker):] if marker in body else body
    return [html.unescape(c) for c in re.findall(r'data-caption="([^"]*)"', part)]


@pytest.fixture
def zoo(zoo_dir):
    app = create_app({"DATA_DIR": zoo_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                      "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"})
    return app.test_client()


@pytest.fixture
def images_db(data_dir):
    """Project `p`: run alpha logs an image every step 0..99, beta at steps 5, 15 and 25."""
    db = ProjectDB(data_dir / "p.db")
    db.log_many("alpha", range(100), lambda s: {IMAGE_KEY: image("alpha", s), "loss": 1.0})
    db.log_many("beta", (5, 15, 25), lambda s: {IMAGE_KEY: image("beta", s)})
    yield db
    db.close()


@pytest.fixture
def tables_db(data_dir):
    """Project `p`: run alpha logs table `preds` at steps 0 and 10, beta at step 10."""
    db = ProjectDB(data_dir / "p.db")
    db.log("alpha", 0, {"preds": table([{"name": "old", "score": 9}])})
    db.log("alpha", 10, {"preds": table([{"name": "apple", "score": 2},
                                         {"name": "banana", "score": 10},
                                         {"name": "x" * 500, "score": 1}])})
    db.log("beta", 10, {"preds": table([{"name": "cherry", "score": 3, "extra": HOSTILE}])})
    yield db
    db.close()


def test_page_has_a_section_per_media_and_table_key_but_not_histograms_or_markdown(zoo):
    body = zoo.get(f"/projects/{ZOO}/media").get_data(as_text=True)
    for key in (IMAGE_KEY, "page", "preds"):
        assert f'id="k-{key_id(key)}"' in body
    for key in ("weights", "report"):
        assert f'id="k-{key_id(key)}"' not in body
    assert 'aria-current="page" href="/projects/zoo/media"' in body
    assert body.count('id="poller"') == 1


def test_hostile_captions_run_names_and_cells_are_shown_escaped(zoo):
    body = zoo.get(f"/projects/{ZOO}/media").get_data(as_text=True)
    assert HOSTILE not in body
    assert html.escape(HOSTILE, quote=False) in body
    assert "alpha at 20 " + HOSTILE in grid_captions(body)
    # Logged HTML only ever appears in a sandboxed frame that may not run scripts.
    frames = re.findall(r"<iframe[^>]*>", section_of(body, "page"))
    assert len(frames) == 6  # one per run at the slider step, and each in the grid
    assert all(" sandbox " in frame and "allow-scripts" not in frame for frame in frames)
    assert "<script>window.pwned" not in body


def test_entries_come_48_per_page_with_a_load_more_button(client, images_db):
    body = client.get("/projects/p/media").get_data(as_text=True)
    first = grid_captions(body)
    assert len(first) == 48
    more = re.search(r'class="load-more" hx-get="([^"]+)"', body).group(1)
    assert "offset=48" in more
    response = client.get(html.unescape(more))
    second = response.get_data(as_text=True)
    assert len(grid_captions(second)) == 48
    # The page's state now counts 96 shown, so a redraw (a poll, a slider) keeps them all.
    kid = key_id(IMAGE_KEY)
    assert response.headers["HX-Replace-Url"] == f"/projects/p/media?n.{kid}=96"
    assert f'id="n-{kid}" name="n.{kid}" form="media-state"\n       value="96" hx-swap-oob="true"' \
        in second
    redrawn = client.get(f"/projects/p/media?n.{kid}=96").get_data(as_text=True)
    assert grid_captions(redrawn) == first + grid_captions(second)
    assert "offset=96" in redrawn
    last_url = html.unescape(re.search(r'hx-get="([^"]+)"', second.split("load-more")[1]).group(1))
    last = client.get(last_url).get_data(as_text=True)
    assert len(grid_captions(last)) == 103 - 96
    assert "load-more" not in last
    shown = first + grid_captions(second) + grid_captions(last)
    assert len(set(shown)) == 103


def test_entries_are_newest_first_unless_oldest_is_asked(client, images_db):
    newest = grid_captions(client.get("/projects/p/media").get_data(as_text=True))
    assert newest[:2] == ["alpha image 99", "alpha image 98"]
    oldest = grid_captions(client.get("/projects/p/media?order=oldest").get_data(as_text=True))
    assert oldest[:3] == ["alpha image 0", "alpha image 1", "alpha image 2"]
    assert "beta image 5" in oldest[:10]


def strip_captions(body: str) -> list[str]:
    strip = section_of(body, IMAGE_KEY).split('class="media-strip"')[1].split("media-all")[0]
    return [html.unescape(c) for c in re.findall(r'data-caption="([^"]*)"', strip)]


def test_step_slider_shows_each_runs_entry_at_or_before_the_step(client, images_db):
    kid = key_id(IMAGE_KEY)
    body = client.get("/projects/p/media").get_data(as_text=True)
    assert strip_captions(body) == ["alpha image 99", "beta image 25"]  # default: newest
    slider = re.search(r'<input type="range"[^>]*>', section_of(body, IMAGE_KEY)).group(0)
    # Left at its default the slider has no name: it follows new steps instead of pinning one.
    assert 'value="99"' in slider and " name=" not in slider
    body = client.get(f"/projects/p/media?at.{kid}=14").get_data(as_text=True)
    assert strip_captions(body) == ["alpha image 14", "beta image 5"]
    body = client.get(f"/projects/p/media?at.{kid}=3").get_data(as_text=True)
    assert strip_captions(body) == ["alpha image 3"]
    assert "Nothing at or before step 3." in section_of(body, IMAGE_KEY)


def test_run_selection_limits_every_section(client, images_db):
    body = client.get("/projects/p/media?run_ids=beta").get_data(as_text=True)
    assert strip_captions(body) == ["beta image 25"]
    assert grid_captions(body) == ["beta image 25", "beta image 15", "beta image 5"]
    empty = client.get("/projects/p/media?run_ids=").get_data(as_text=True)
    assert "No images, video, audio, HTML or tables logged" in empty


def test_a_control_redraws_its_section_and_the_address_bar_follows(client, images_db):
    kid = key_id(IMAGE_KEY)
    response = client.get(f"/projects/p/media/section?key={IMAGE_KEY}&at.{kid}=20&order=oldest")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<section class="media-key" id="k-{kid}"')
    assert strip_captions(body) == ["alpha image 20", "beta image 15"]
    assert response.headers["HX-Replace-Url"] == f"/projects/p/media?order=oldest&at.{kid}=20"


def test_the_whole_page_state_rides_on_control_requests_but_all_runs_stays_implicit(
        client, images_db):
    # What the page's state form sends: every box ticked, and "all" while none was unticked.
    kid = key_id(IMAGE_KEY)
    response = client.get(f"/projects/p/media/section?key={IMAGE_KEY}&run_ids=&run_ids=alpha"
                          f"&run_ids=beta&sel=all&at.{kid}=7&__theme=dark")
    assert response.headers["HX-Replace-Url"] == f"/projects/p/media?__theme=dark&at.{kid}=7"
    response = client.get(f"/projects/p/media/section?key={IMAGE_KEY}&run_ids=&run_ids=beta"
                          f"&sel=some")
    assert response.headers["HX-Replace-Url"] == "/projects/p/media?run_ids=beta"


def test_video_audio_and_html_play_from_the_file_route_with_native_controls(client, data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log("alpha", 0, {"clip": {"_type": "trackio.video", "file_path": "p/alpha/0/v.mp4",
                                 "caption": "a clip"},
                        "sound": {"_type": "trackio.audio", "file_path": "p/alpha/0/a.wav",
                                  "caption": None},
                        "page": {"_type": "trackio.html", "file_path": "p/alpha/0/p.html"}})
    db.close()
    body = client.get("/projects/p/media").get_data(as_text=True)
    assert '<video controls preload="metadata" src="/file?path=p/alpha/0/v.mp4">' \
        in section_of(body, "clip")
    assert '<audio controls preload="metadata" src="/file?path=p/alpha/0/a.wav">' \
        in section_of(body, "sound")
    assert '<iframe sandbox src="/file?path=p/alpha/0/p.html"' in section_of(body, "page")
    assert "a clip" in section_of(body, "clip")


def table_rows(body: str) -> list[list[str]]:
    tbody = section_of(body, "preds").split("<tbody>")[1].split("</tbody>")[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", tbody, re.S):
        cells = re.findall(r"<td>(.*?)</td>", row, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def test_table_shows_each_runs_newest_table_with_run_and_step_columns(client, tables_db):
    body = client.get("/projects/p/media").get_data(as_text=True)
    rows = table_rows(body)
    assert [row[:4] for row in rows[:2]] == [["alpha", "10", "apple", "2"],
                                             ["alpha", "10", "banana", "10"]]
    assert rows[3][:4] == ["beta", "10", "cherry", "3"]
    headers = re.findall(r"<th[^>]*>\s*<a[^>]*>([^<]*)</a>", section_of(body, "preds"))
    assert headers == ["run", "step", "name", "score", "extra"]


def test_table_slider_picks_the_step(client, tables_db):
    body = client.get(f"/projects/p/media?at.{key_id('preds')}=5").get_data(as_text=True)
    assert table_rows(body) == [["alpha", "0", "old", "9"]]


def test_table_sorts_by_a_column_and_filters_by_text(client, tables_db):
    kid = key_id("preds")
    body = client.get(f"/projects/p/media?sort.{kid}=score&desc.{kid}=1").get_data(as_text=True)
    assert [row[3] for row in table_rows(body)] == ["10", "3", "2", "1"]
    body = client.get(f"/projects/p/media?sort.{kid}=score").get_data(as_text=True)
    assert [row[3] for row in table_rows(body)] == ["1", "2", "3", "10"]
    body = client.get(f"/projects/p/media?q.{kid}=AN").get_data(as_text=True)
    assert [row[2] for row in table_rows(body)] == ["banana"]
    assert "1 of 4 rows" in body
    # A header link sorts the other way when its column is already sorted ascending.
    link = re.search(r'<th aria-sort="ascending">\s*<a href="([^"]+)"',
                     section_of(client.get(f"/projects/p/media?sort.{kid}=score")
                                .get_data(as_text=True), "preds")).group(1)
    assert f"desc.{kid}=1" in html.unescape(link)


def test_long_cells_are_truncated_with_the_whole_text_one_click_away(client, tables_db):
    body = section_of(client.get("/projects/p/media").get_data(as_text=True), "preds")
    details = re.search(r'<details class="cell-more"><summary[^>]*>(x+)…</summary>'
                        r'<div class="cell-full">(x+)</div></details>', body)
    assert details and len(details.group(1)) < 200 and len(details.group(2)) == 500


def test_hostile_table_cells_and_column_names_are_escaped(client, data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log("alpha", 0, {"preds": table([{HOSTILE: HOSTILE, "ok": "'\"><script>x()</script>"}])})
    db.close()
    body = client.get("/projects/p/media").get_data(as_text=True)
    assert HOSTILE not in body and "<script>x()" not in body
    assert html.escape(HOSTILE, quote=False) in section_of(body, "preds")


def test_hostile_key_names_are_escaped_and_still_addressable(client, data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log("alpha", 0, {HOSTILE: image("alpha", 0), "cells": table([{"pic": image("alpha", 0)}])})
    db.close()
    body = client.get("/projects/p/media").get_data(as_text=True)
    assert HOSTILE not in body
    assert f"<h2>{html.escape(HOSTILE)}</h2>" in section_of(body, HOSTILE)
    response = client.get("/projects/p/media/section", query_string={"key": HOSTILE})
    assert response.status_code == 200 and HOSTILE not in response.get_data(as_text=True)
    # An image in a table cell is a thumbnail that opens in the lightbox.
    assert '<a class="thumb cell-image" href="/file?path=p/alpha/0/img.png"' \
        in section_of(body, "cells")


@pytest.mark.parametrize("query", [
    "order=sideways", "at.{kid}=abc", "at.{kid}=1e400", "at.nothex=3", "desc.{tid}=2",
    "q.{tid}=" + "a" * 201, "n.{kid}=-1", "n.{kid}=10000000000", "n.{kid}=²",
    # Digits int() takes but no page writes: fullwidth, Arabic-Indic, underscores, a sign.
    "at.{kid}=１", "at.{kid}=٣", "at.{kid}=1_0", "at.{kid}=+5", "n.{kid}=٣", "n.{kid}=+96",
])
def test_bad_media_parameters_are_400(client, images_db, query):
    # The page's own settings; a bad view setting (theme, runs) falls back instead
    # (tests/test_interaction.py).
    images_db.log("alpha", 0, {"preds": table([{"a": 1}])})
    response = client.get("/projects/p/media?" + query.format(kid=key_id(IMAGE_KEY),
                                                              tid=key_id("preds")))
    assert response.status_code == 400


def test_a_step_slider_at_a_negative_step_is_understood(client, data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log_many("alpha", (-2, -1, 0), lambda s: {IMAGE_KEY: image("alpha", s)})
    db.close()
    body = client.get(f"/projects/p/media?at.{key_id(IMAGE_KEY)}=-2").get_data(as_text=True)
    assert strip_captions(body) == ["alpha image -2"]


@pytest.mark.parametrize("path,status", [
    ("/projects/p/media/more?key=samples/image&offset=-1", 400),
    ("/projects/p/media/more?key=samples/image&offset=ten", 400),
    # Beyond the key's 103 entries: no button ever asks, and each would be a cache entry.
    ("/projects/p/media/more?key=samples/image&offset=103", 400),
    ("/projects/p/media/more?key=samples/image&offset=99999999999999999999999999", 400),
    ("/projects/p/media/more?key=samples/image&offset=٣", 400),
    ("/projects/p/media/more?key=samples/image&offset=1_0", 400),
    ("/projects/p/media/more?key=samples/image&offset=%2B5", 400),
    ("/projects/p/media/more?key=samples/image&offset=102", 200),
    ("/projects/p/media/more?key=samples/image", 400),
    ("/projects/p/media/more?offset=48", 400),
    ("/projects/p/media/more?key=nope&offset=48", 404),
    ("/projects/p/media/section?key=loss", 404),
    ("/projects/p/media/refresh?v=x&iv=zero", 400),
    ("/projects/p/media/refresh?v=x", 400),
    ("/projects/nope/media", 404),
    ("/projects/bad..name/media", 400),
])
def test_bad_fragment_requests_are_clear_4xx(client, images_db, path, status):
    assert client.get(path).status_code == status


def test_one_render_serves_every_viewer_of_a_view(client, images_db):
    client.get("/projects/p/media")
    before = caching.computations["count"]
    bodies = {client.get("/projects/p/media").get_data() for _ in range(3)}
    assert len(bodies) == 1
    assert caching.computations["count"] == before


def test_poll_is_204_until_something_is_logged_then_brings_only_the_changed_key(
        client, data_dir, clock):
    db = ProjectDB(data_dir / "p.db")
    db.log("alpha", 0, {IMAGE_KEY: image("alpha", 0), "preds": table([{"a": 1}])})
    url = poll_url(client.get("/projects/p/media").data)
    assert client.get(url).status_code == 204
    db.log("alpha", 1, {IMAGE_KEY: image("alpha", 1, caption="late <b>")})
    db.close()
    response = client.get(url)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert f'id="k-{key_id(IMAGE_KEY)}"' in fragment and 'hx-swap-oob="true"' in fragment
    assert f'id="k-{key_id("preds")}"' not in fragment
    assert "late &lt;b&gt;" in fragment
    assert fragment.count('id="poller"') == 1
    assert client.get(poll_url(response.data)).status_code == 204


def test_poll_from_a_version_never_issued_redraws_every_section(client, images_db, clock):
    forged = re.sub(r"(?<=[?&])v=[^&]+", "v=forged", poll_url(client.get("/projects/p/media").data))
    fragment = client.get(forged).get_data(as_text=True)
    assert '<div id="media-sections" hx-swap-oob="true">' in fragment
    assert fragment.count('id="poller"') == 1


def test_more_of_a_table_key_is_404(client, tables_db):
    assert client.get("/projects/p/media/more?key=preds&offset=0").status_code == 404


def test_list_valued_settings_ride_along_as_one_hidden_input_each(zoo):
    response = zoo.get(f"/projects/{ZOO}/media?device=gpu%2F0&device=x")
    body = response.get_data(as_text=True)
    state = body.split('id="media-state"')[1].split("</form>")[0]
    assert re.findall(r'<input type="hidden" name="device" value="([^"]*)">', state) == ["gpu/0", "x"]
    assert "[&#39;" not in body
    # What that form then sends keeps both devices in the address bar.
    section = zoo.get(f"/projects/{ZOO}/media/section?key=preds&device=gpu%2F0&device=x")
    assert section.headers["HX-Replace-Url"] == f"/projects/{ZOO}/media?device=gpu/0&device=x"


def test_ids_of_keys_not_on_the_page_are_dropped_from_links_the_address_and_the_cache(zoo):
    tid = key_id("preds")
    plain = zoo.get(f"/projects/{ZOO}/media?q.{tid}=long").get_data()
    before = caching.computations["count"]
    # Made-up ids, and a table's filter given to an image key, change nothing.
    query = f"q.{tid}=long&q.0123456789=zz&sort.abcdefabcd={'x' * 200}&q.{key_id(IMAGE_KEY)}=a"
    assert zoo.get(f"/projects/{ZOO}/media?{query}").get_data() == plain
    assert caching.computations["count"] == before
    section = zoo.get(f"/projects/{ZOO}/media/section?key=preds&{query}")
    assert section.headers["HX-Replace-Url"] == f"/projects/{ZOO}/media?q.{tid}=long"
    assert b"0123456789" not in section.data and b"abcdefabcd" not in section.data


def test_shown_counts_are_rounded_to_pages_and_clamped_to_the_entries(client, images_db):
    kid = key_id(IMAGE_KEY)
    page = client.get(f"/projects/p/media?n.{kid}=96").get_data()
    assert len(grid_captions(page.decode())) == 96
    # 97 is not a count "load more" can reach from 96: it means the next page, all 103.
    everything = client.get(f"/projects/p/media?n.{kid}=97").get_data()
    assert len(grid_captions(everything.decode())) == 103
    before = caching.computations["count"]
    for shown in (50, 95):
        assert client.get(f"/projects/p/media?n.{kid}={shown}").get_data() == page
    for shown in (103, 144, 4800, 99999):
        assert client.get(f"/projects/p/media?n.{kid}={shown}").get_data() == everything
    assert caching.computations["count"] == before  # one render each for 96 and for all
    assert client.get(f"/projects/p/media?n.{kid}=48").get_data() \
        == client.get("/projects/p/media").get_data()
    response = client.get(f"/projects/p/media/section?key={IMAGE_KEY}&n.{kid}=99999")
    assert response.headers["HX-Replace-Url"] == f"/projects/p/media?n.{kid}=103"


@pytest.fixture
def many_keys_db(data_dir):
    """Project `p`: run alpha logs six image keys, 100 entries each."""
    db = ProjectDB(data_dir / "p.db")
    db.log_many("alpha", range(100), lambda s: {f"k{i}": image("alpha", s) for i in range(6)})
    yield db
    db.close()


def cards(body: str) -> int:
    return body.count('<figure class="media-card">')


def test_a_page_shows_at_most_max_cards_and_says_so(client, many_keys_db):
    first_pages = client.get("/projects/p/media").get_data(as_text=True)
    assert cards(first_pages) == 6 * (1 + 48)  # each key's strip and first page
    assert "media-capped" not in first_pages
    query = "&".join(f"n.{key_id(f'k{i}')}=100" for i in range(6))
    body = client.get(f"/projects/p/media?{query}").get_data(as_text=True)
    assert cards(body) == MAX_CARDS < 6 * (1 + 100)
    assert f"This page shows at most {MAX_CARDS} media cards" in body
    # Every key keeps its first page; the extra pages go in key order until the budget ends.
    shown = [len(grid_captions(section_of(body, f"k{i}"), f"k{i}")) for i in range(6)]
    assert shown == [100, 100, 100, 78, 48, 48]
    assert "78 of 100 entries shown" in section_of(body, "k3")
    # The capped key's "Load more" continues where its grid stops, a page at a time.
    more = re.search(r'class="load-more" hx-get="([^"]+)"', section_of(body, "k3")).group(1)
    assert "offset=78" in more
    assert len(grid_captions(client.get(html.unescape(more) + "&" + query)
                             .get_data(as_text=True))) == 22


def test_the_media_page_submits_its_controls_with_the_shared_controls_script(client, images_db):
    body = client.get("/projects/p/media").get_data(as_text=True)
    scripts = re.findall(r'<script src="/static/([a-z]+)\.js', body)
    assert [name for name in scripts if name != "embed"][-2:] == ["controls", "gallery"]
    gallery_js = (Path(__file__).parent.parent / "static" / "gallery.js").read_text()
    assert "data-autosubmit" not in gallery_js and "requestSubmit" not in gallery_js
