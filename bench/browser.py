"""Chromium measurements: first load until charts are drawn, and requests per minute of an idle tab."""

from __future__ import annotations

import time
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--host-resolver-rules=MAP *.hf.space 127.0.0.1"]

OURS_DRAWN = """() => {
  const panels = [...document.querySelectorAll('.panel')]
    .filter(p => p.getBoundingClientRect().top < window.innerHeight);
  return panels.length > 0 && panels.every(p => p.classList.contains('drawn'));
}"""
THEIRS_DRAWN = """() => {
  const embeds = [...document.querySelectorAll('.vega-embed')]
    .filter(e => e.getBoundingClientRect().top < window.innerHeight);
  return embeds.length > 0 && embeds.every(e => e.querySelector('canvas'));
}"""


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def first_load(browser, url: str, ours: bool) -> dict[str, float]:
    """Seconds until the first screen of charts is drawn, and bytes transferred until then."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    sizes: list[int] = []
    batch_done: list[float] = []

    def finished(request) -> None:
        try:
            sizes.append(request.sizes()["responseBodySize"])
        except Exception:
            return
        if "get_logs_batch" in request.url:
            batch_done.append(time.perf_counter())

    page.on("requestfinished", finished)
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(OURS_DRAWN if ours else THEIRS_DRAWN, timeout=120_000)
    if not ours:
        # Their plots exist before the data arrives; count until the batch came back and drew.
        while not batch_done and time.perf_counter() - started < 120:
            page.wait_for_timeout(20)
        page.wait_for_timeout(50)
    drawn = time.perf_counter() - started
    page.wait_for_timeout(300)
    context.close()
    return {"drawn_s": drawn, "bytes": float(sum(sizes))}


def requests_per_minute(browser, url: str, seconds: float, settle: float = 5.0) -> dict[str, float]:
    """Requests an open, visible, idle tab sends, per minute, after it settled."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    counted: list[str] = []
    page.goto(url)
    page.wait_for_timeout(settle * 1000)
    page.on("request", lambda request: counted.append(request.url))
    page.wait_for_timeout(seconds * 1000)
    context.close()
    return {"per_minute": len(counted) * 60.0 / seconds}
