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
from typing import NamedTuple

import pytest
from servers import free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
GUNICORN_CONF = Path(__file__).with_name("gunicorn_conf.py")
# Generous: under a CPU hog (make e2e-under-load) a first chart draw can take many seconds.
PAGE_TIMEOUT_MS = 60_000
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


class Request(NamedTuple):
    """One access-log line: start and end as Unix times (microseconds), request line, status."""

    at: float
    done: float
    line: str
    status: int


ACCESS_LINE = re.compile(r'\[(\d+\.\d+) (\d+\.\d+)\] "(.+?)" (\d+)$')


class Server:
    """gunicorn serving the app over a data dir, with an access log to count and time requests."""

    def __init__(self, data_dir: Path, log_dir: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = log_dir / f"access-{self.port}.log"
        self.access_log.touch()
        env = {**os.environ, "TRACKIO_DIR": str(data_dir), "TRACKIO_FLASK_POLL_LOCAL_S": "1",
               "TRACKIO_FLASK_POLL_IDLE_AFTER_S": "600", **settings}
        gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
        self.error_log_path = log_dir / f"gunicorn-{self.port}.log"
        self.error_log = open(self.error_log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [gunicorn, "-c", str(GUNICORN_CONF), "-w", "1", "--threads", "8",
             "-b", f"127.0.0.1:{self.port}", "--access-logfile", str(self.access_log),
             "--access-logformat", '[%(S)s %(E)s] "%(r)s" %(s)s', "trackio_flask:create_app()"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.error_log)
        deadline = time.monotonic() + 90  # imports are slow on a busy machine
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.error_log.close()
                tail = self.error_log_path.read_text()[-3000:]
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{tail}")
            try:
                urllib.request.urlopen(self.url + "/version", timeout=5)
                return
            except OSError:
                time.sleep(0.1)  # start-up poll, not a test assertion
        self.stop()
        raise RuntimeError("gunicorn did not answer /version within 90 s")

    def requests(self, pattern: str = r"/refresh") -> list[Request]:
        """Logged requests whose request line matches `pattern`, in the order they finished."""
        text = self.access_log.read_text()
        lines = text.splitlines()
        if text and not text.endswith("\n"):
            lines = lines[:-1]  # a line still being written
        out = []
        for line in lines:
            match = ACCESS_LINE.match(line)
            if match and re.search(pattern, match.group(3)):
                out.append(Request(float(match.group(1)), float(match.group(2)), match.group(3),
                                   int(match.group(4))))
        return out

    def count(self, pattern: str = r"/refresh") -> int:
        return len(self.requests(pattern))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.error_log.closed:
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
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
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
