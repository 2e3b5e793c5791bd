"""Screenshots of every page for the README: `make screenshots` writes docs/screenshots/*.png.

The images are generated, not committed (the repository keeps no screenshots): the project is
logged by trackio's own client (tests/trackio_zoo.py, every rich type) plus a 6-run sweep, served
in-process and photographed with Debian's Chromium.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log in the output

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
PAGES = [  # file name, path, what must be on screen before the picture is taken
    ("projects", "/", "table, .projects, main"),
    ("metrics", "/projects/zoo", ".panel .chart canvas, .panel .chart svg"),
    ("runs", "/projects/zoo/runs", "table"),
    ("run", "/projects/zoo/runs/alpha", ".panel .chart canvas, .panel .chart svg"),
    ("media", "/projects/zoo/media", "img"),
    ("histograms", "/projects/zoo/histograms", "svg, canvas"),
    ("reports", "/projects/zoo/reports", "table"),
    ("compare", "/projects/zoo/compare", "table"),
]


def main() -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from trackio_zoo import log_zoo

    from trackio_flask import create_app

    data = Path(tempfile.mkdtemp(prefix="screenshots-"))
    log_zoo(data)
    app = create_app({"DATA_DIR": data, "RATELIMIT_ENABLED": False})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        for name, path, ready in PAGES:
            response = page.goto(base + path)
            if response is None or response.status != 200:
                print(f"{name}: {path} answered {response and response.status}, skipped")
                continue
            page.wait_for_selector(ready, state="attached", timeout=60_000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / f"{name}.png"))
            print(f"{name}: docs/screenshots/{name}.png")
        browser.close()
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
