"""Media & Tables in real Chromium on data logged by trackio's own client: thumbnails, the
lightbox, step sliders, tables, inert HTML media and a live image arriving without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from trackio_zoo import HOSTILE, ZOO, log_more, log_zoo

from trackio_flask.gallery import key_id

from .waiting import WAIT_S, wait_until

pytestmark = pytest.mark.browser
WAIT_MS = WAIT_S * 1000  # expect() waits 5 s by default: too short on a busy machine
IMAGE_GRID = f"#g-{key_id('samples/image')}"
LATE_IMAGE = ("trackio.log({'samples/image': trackio.Image(np.zeros((8, 8, 3), dtype=np.uint8), "
              "caption='late')}, step=40)")


def open_media(page, server):
    page.goto(f"{server.url}/projects/{ZOO}/media")
    expect(page.locator(f"{IMAGE_GRID} img").first).to_be_visible(timeout=WAIT_MS)


def loaded_images(page, selector: str) -> list[int]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.complete ? e.naturalWidth : 0)")


def lightbox_state(page) -> dict:
    return page.evaluate("""() => ({open: document.getElementById('lightbox').open,
        caption: document.getElementById('lightbox-caption').textContent,
        position: document.getElementById('lightbox-position').textContent,
        src: document.getElementById('lightbox-image').getAttribute('src')})""")


def test_thumbnails_open_in_a_lightbox_driven_by_keys_and_buttons(page, start_server, zoo_dir):
    server = start_server(zoo_dir)
    open_media(page, server)
    wait_until(page, lambda: all(loaded_images(page, f"{IMAGE_GRID} img")),
               "every thumbnail to load")
    links = page.locator(f"{IMAGE_GRID} a[data-lightbox]")
    assert links.count() == 9  # 3 runs × steps 0, 10, 20
    captions = links.evaluate_all("els => els.map(e => e.dataset.caption)")
    hrefs = links.evaluate_all("els => els.map(e => e.getAttribute('href'))")

    links.nth(0).click()
    state = lightbox_state(page)
    assert state == {"open": True, "caption": captions[0], "position": "1 / 9", "src": hrefs[0]}
    assert HOSTILE in state["caption"]  # shown as text
    expect(page.locator("#lightbox-image")).to_be_visible(timeout=WAIT_MS)
    page.keyboard.press("ArrowRight")
    assert lightbox_state(page)["caption"] == captions[1]
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # wraps around to the last
    assert lightbox_state(page)["position"] == "9 / 9"
    page.click("#lightbox-next")
    assert lightbox_state(page)["src"] == hrefs[0]
    page.click("#lightbox-prev")
    assert lightbox_state(page)["caption"] == captions[8]
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).not_to_be_visible(timeout=WAIT_MS)
    links.nth(2).click()
    assert lightbox_state(page)["position"] == "3 / 9"
    page.click("#lightbox-close")
    expect(page.locator("#lightbox")).not_to_be_visible(timeout=WAIT_MS)
    assert page.dialogs == []
    assert page.query_selector("img[src=x]") is None


def test_html_media_is_sandboxed_and_its_script_never_runs(page, start_server, zoo_dir):
    server = start_server(zoo_dir)
    open_media(page, server)
    frames = page.locator(f"#k-{key_id('page')} iframe")
    assert frames.count() == 6  # the three runs at the slider step, and the grid
    for sandbox in frames.evaluate_all("els => els.map(e => e.getAttribute('sandbox'))"):
        assert sandbox == ""  # no allow-scripts, no allow-same-origin
    expect(page.frame_locator(f"#k-{key_id('page')} iframe").first.locator("p")) \
        .to_have_text("hello", timeout=WAIT_MS)
    inner = [frame for frame in page.frames if "/file?" in frame.url]
    assert len(inner) == 6
    for frame in inner:
        assert frame.evaluate("() => typeof window.pwned") == "undefined"
    assert page.evaluate("() => typeof window.pwned") == "undefined"
    assert page.dialogs == []


def test_step_slider_and_table_controls_redraw_in_place_and_live_in_the_url(
        page, start_server, zoo_dir):
    server = start_server(zoo_dir)
    open_media(page, server)
    page.evaluate("() => { window.__sameDocument = true; }")
    kid = key_id("samples/image")
    strip = page.locator(f"#k-{kid} .media-strip figcaption .caption")
    expect(strip).to_have_count(3, timeout=WAIT_MS)
    assert all(" at 20 " in text for text in strip.all_inner_texts())
    page.focus(f"#at-{kid}")
    page.keyboard.press("Home")  # the slider's first step
    expect(page.locator(f"#k-{kid} .media-strip figcaption .caption").first) \
        .to_contain_text(" at 0 ", timeout=WAIT_MS)
    wait_until(page, lambda: f"at.{kid}=0" in page.url, "the slider step in the URL")
    assert "run_ids" not in page.url  # "all runs" stays implicit, so later runs still show

    tid = key_id("preds")
    page.fill(f"#q-{tid}", "long text")
    expect(page.locator(f"#k-{tid} tbody tr")).to_have_count(3, timeout=WAIT_MS)
    expect(page.locator(f"#k-{tid} details.cell-more").first).to_be_visible(timeout=WAIT_MS)
    summary = page.locator(f"#k-{tid} details.cell-more summary").first
    assert len(summary.inner_text()) < 200
    summary.click()
    expect(page.locator(f"#k-{tid} .cell-full").first).to_contain_text("long text " * 40, timeout=WAIT_MS)
    page.click(f"#k-{tid} th a:text-is('run')")
    expect(page.locator(f"#k-{tid} th[aria-sort=ascending]")).to_have_text(re.compile("run"), timeout=WAIT_MS)
    names = page.locator(f"#k-{tid} tbody tr td:first-child").all_inner_texts()
    assert names == sorted(names, key=str.casefold)
    wait_until(page, lambda: f"sort.{tid}=run" in page.url and "long+text" in page.url,
               "the table's sort and filter in the URL")
    assert page.evaluate("() => window.__sameDocument") is True
    page.reload()  # the URL alone brings the same view back
    expect(page.locator(f"#k-{tid} tbody tr")).to_have_count(3, timeout=WAIT_MS)
    assert page.input_value(f"#at-{kid}") == "0"

    page.click(f"#k-{kid} button.newest")  # back to following the newest step
    expect(page.locator(f"#k-{kid} .media-strip figcaption .caption").first) \
        .to_contain_text(" at 20 ", timeout=WAIT_MS)
    wait_until(page, lambda: f"at.{kid}" not in page.url, "the slider step to leave the URL")

    page.click(".run-chooser summary")
    page.locator(".run-chooser label", has_text=HOSTILE).locator("input").uncheck()
    expect(page.locator(f"#k-{kid} .strip-run")).to_have_text(["alpha", "beta"], timeout=WAIT_MS)
    assert "sel=" in page.url and "run_ids" not in page.url and f"sort.{tid}=run" in page.url
    expect(page.locator(f"#k-{tid} tbody tr")).to_have_count(2, timeout=WAIT_MS)
    assert page.dialogs == []


def test_a_newly_logged_image_appears_without_a_reload(page, start_server, tmp_path):
    data_dir = tmp_path / "live"
    data_dir.mkdir()
    log_zoo(data_dir)
    server = start_server(data_dir)
    open_media(page, server)
    page.evaluate("() => { window.__sameDocument = true; }")
    assert page.locator("[data-poll]").count() == 1
    log_more(data_dir, LATE_IMAGE)
    late = page.locator(f"{IMAGE_GRID} a[data-lightbox][data-caption='late']")
    expect(late).to_have_count(1, timeout=WAIT_MS)
    expect(late.locator("img")).to_be_visible(timeout=WAIT_MS)
    # Newest first: the late image leads the grid, and the slider's default follows it.
    assert page.locator(f"{IMAGE_GRID} a[data-lightbox]").first.get_attribute("data-caption") \
        == "late"
    expect(page.locator(f"#k-{key_id('samples/image')} .media-strip .caption").first) \
        .to_have_text("late", timeout=WAIT_MS)
    assert page.evaluate("() => window.__sameDocument") is True
    assert page.locator("[data-poll]").count() == 1
    assert page.locator("#poller").count() == 1
    assert page.dialogs == []
