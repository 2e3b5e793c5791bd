"""Screenshots of every page for the README: `make screenshots` rewrites docs/screenshots/*.png.

Each page in the light and the dark theme at a desktop window, and on a phone (390 px): the
project is logged by trackio's own client (tests/trackio_zoo.py, every rich type), served
in-process and photographed with Debian's Chromium. The pictures are committed, so they are
squeezed with pngquant (256 colours, dithered) and optipng when those are installed
(`apt-get install pngquant optipng`); without them the PNGs are written as Chromium made them.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
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
    ("metrics", "/projects/zoo?smoothing=5", ".panel .chart canvas"),
    ("runs", "/projects/zoo/runs", "table"),
    ("run", "/projects/zoo/runs/alpha", ".panel .chart canvas"),
    ("media", "/projects/zoo/media", "img"),
    ("histograms", "/projects/zoo/histograms", "svg"),
    ("reports", "/projects/zoo/reports", "table"),
    ("compare", "/projects/zoo/compare", "table"),
]
VARIANTS = [  # name, theme, viewport
    ("light", "light", {"width": 1200, "height": 760}),
    ("dark", "dark", {"width": 1200, "height": 760}),
    ("phone", "light", {"width": 390, "height": 780}),
]
DRAWN = "() => [...document.querySelectorAll('.panel:has(.chart)')].every(p => p.classList.contains('drawn'))"


def optimise(path: Path) -> None:
    """Shrink a PNG in place (a third of its size or less); keep it as is without the tools."""
    if shutil.which("pngquant"):
        subprocess.run(["pngquant", "--force", "--skip-if-larger", "--speed", "1",
                        "--quality", "55-85", "--output", str(path), str(path)], check=False)
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o2", str(path)], check=False)


def show_hover(page) -> None:
    """Point at the middle of the first chart, so the readout and crosshair are in the picture."""
    spot = page.evaluate("""() => {
      const entry = [...window.trackioFlask.views.values()].find(e => e.view && e.kind === 'line');
      if (!entry) return null;
      const box = entry.view.container().querySelector('canvas').getBoundingClientRect();
      const [ox, oy] = entry.view.origin();
      return {x: box.left + ox + entry.view.width() * 0.55, y: box.top + oy + entry.view.height() * 0.4};
    }""")
    if spot:
        page.mouse.move(spot["x"], spot["y"], steps=3)
        page.wait_for_selector("#readout:not([hidden])")


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
    if not shutil.which("pngquant"):
        print("pngquant not found: the PNGs stay unoptimised (apt-get install pngquant optipng)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        for variant, theme, viewport in VARIANTS:
            page = browser.new_page(viewport=viewport)
            for name, path, ready in PAGES:
                joiner = "&" if "?" in path else "?"
                response = page.goto(f"{base}{path}{joiner}__theme={theme}")
                if response is None or response.status != 200:
                    print(f"{name}: {path} answered {response and response.status}, skipped")
                    continue
                page.wait_for_selector(ready, state="attached", timeout=60_000)
                page.wait_for_function(DRAWN, timeout=60_000)
                page.wait_for_load_state("networkidle")
                if name == "metrics" and variant != "phone":
                    show_hover(page)
                target = OUT / f"{name}-{variant}.png"
                page.screenshot(path=str(target))
                optimise(target)
                print(f"{name} ({variant}): {target.relative_to(ROOT)} "
                      f"{target.stat().st_size / 1024:.0f} kB")
            page.close()
        browser.close()
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
