"""Real Chromium (Debian's, through Playwright) against the real app under gunicorn."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from servers import free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP *.hf.space 127.0.0.1"]


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI is set but {CHROMIUM} is missing: browser tests cannot run")
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not installed (apt-get install chromium)")
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(skip)


class Server:
    """gunicorn serving the app over a data dir, with an access log to count requests."""

    def __init__(self, data_dir: Path, log_dir: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = log_dir / f"access-{self.port}.log"
        env = {**os.environ, "TRACKIO_DIR": str(data_dir), "TRACKIO_FLASK_POLL_LOCAL_S": "1",
               "TRACKIO_FLASK_POLL_IDLE_AFTER_S": "600", **settings}
        gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
        self.error_log = open(log_dir / f"gunicorn-{self.port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [gunicorn, "-w", "1", "--threads", "8", "-b", f"127.0.0.1:{self.port}",
             "--access-logfile", str(self.access_log),
             "--access-logformat", '%(t)s "%(r)s" %(s)s', "trackio_flask:create_app()"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.error_log)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/version", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def requests(self, pattern: str = r"/refresh") -> list[tuple[float, str, int]]:
        """(time, request line, status) of logged requests whose line matches `pattern`."""
        out = []
        for line in self.access_log.read_text().splitlines():
            match = re.match(r'\[(.+?)\] "(.+?)" (\d+)', line)
            if match and re.search(pattern, match.group(2)):
                stamp = time.mktime(time.strptime(match.group(1).split()[0], "%d/%b/%Y:%H:%M:%S"))
                out.append((stamp, match.group(2), int(match.group(3))))
        return out

    def count(self, pattern: str = r"/refresh") -> int:
        return len(self.requests(pattern))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.error_log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.console_messages = []
    page.dialogs = []
    page.on("console", lambda m: page.console_messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: page.console_messages.append(f"pageerror: {e}"))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]", "_", request.node.name)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception:
            pass
        (ARTIFACTS / f"{name}.console.log").write_text("\n".join(page.console_messages))
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(data_dir: Path, **settings: str) -> Server:
        server = Server(data_dir, tmp_path, **settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
