"""The shipped nginx config (docs/deploy/nginx.conf, microcaching on) in front of real gunicorn:
a tick's identical polls reach the app once, and a request with the write cookie never gets a
cached answer. Counting is done in gunicorn's own access log."""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from servers import free_port

pytestmark = pytest.mark.deploy

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SHIPPED = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "nginx.conf"
TOKEN = "deploy-token-9e1f"
MAIN_CONF = """
worker_processes 1;
daemon off;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 512; }}
http {{
  log_format cache '$request_uri $upstream_cache_status $status';
  access_log {tmp}/nginx-access.log cache;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  include {tmp}/trackio.conf;
}}
"""


def shipped_config(tmp: Path, port: int, upstream: int) -> str:
    """docs/deploy/nginx.conf with this test's ports and cache directory, nothing else changed."""
    text = SHIPPED.read_text()
    # The test's own requests come from 127.0.0.1: it plays the load balancer in front.
    for old, new in (("listen 80;", f"listen 127.0.0.1:{port};"),
                     ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};"),
                     ("/var/cache/nginx/trackio", str(tmp / "cache")),
                     ("set_real_ip_from 10.0.0.0/8;", "set_real_ip_from 127.0.0.1/32;")):
        assert old in text, f"{old!r} is no longer in the shipped config"
        text = text.replace(old, new)
    return text


@pytest.fixture
def stack(tmp_path, data_dir, project_db):
    with running_stack(tmp_path, data_dir, {}) as started:
        yield started


@pytest.fixture
def limited_stack(tmp_path, data_dir, project_db):
    """The stack with a page budget of 3 a minute per client."""
    with running_stack(tmp_path, data_dir, {"TRACKIO_FLASK_RATELIMIT_PAGES": "3 per minute"}
                       ) as started:
        yield started


@contextlib.contextmanager
def running_stack(tmp_path: Path, data_dir: Path, extra_env: dict[str, str]):
    """gunicorn over `data_dir` behind nginx with the shipped config, until the block ends."""
    if not Path(NGINX).exists():
        if os.environ.get("CI"):
            pytest.fail("nginx is required in CI")
        pytest.skip("nginx is not available here")
    app_port, nginx_port = free_port(), free_port()
    # A long tick keeps the test free of timing windows: "one tick" is 30 s here, so every
    # request of the test falls in it however slow the machine is.
    env = {**os.environ, "TRACKIO_DIR": str(data_dir), "TRACKIO_FLASK_PROXY_HOPS": "1",
           "TRACKIO_FLASK_TICK_S": "30", "TRACKIO_WRITE_TOKEN": TOKEN,
           "TRACKIO_FLASK_POLL_IDLE_AFTER_S": "1e9", **extra_env}
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
    access = tmp_path / "app-access.log"
    app_log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115
    app = subprocess.Popen(
        [gunicorn, "-w", "1", "--threads", "8", "-b", f"127.0.0.1:{app_port}",
         "--access-logfile", str(access), "--access-logformat", "%(U)s?%(q)s %(s)s",
         "--logger-class", "trackio_flask.gunicorn_logging.RedactingLogger",
         "trackio_flask:create_app()"], env=env, stdout=app_log, stderr=subprocess.STDOUT)
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "cache", "cache-history"):
        (tmp_path / folder).mkdir()
    (tmp_path / "trackio.conf").write_text(shipped_config(tmp_path, nginx_port, app_port))
    conf = tmp_path / "nginx.conf"
    conf.write_text(MAIN_CONF.format(tmp=tmp_path))
    proxy = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{nginx_port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if proxy.poll() is not None:
                pytest.fail("nginx refused the shipped config: " + proxy.stderr.read().decode())
            try:
                urllib.request.urlopen(base + "/version", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the stack did not come up: "
                        + (tmp_path / "gunicorn.log").read_text()[-2000:]
                        + (tmp_path / "nginx-error.log").read_text()[-2000:])
        yield {"base": base, "access": access, "app": f"http://127.0.0.1:{app_port}"}
    finally:
        for proc in (proxy, app):
            proc.terminate()
            proc.wait(timeout=10)
        proxy.stderr.close()
        app_log.close()


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def app_requests(stack, path: str, expected: int) -> int:
    """How many requests for `path` (path?query) the app has logged, once it has logged at
    least `expected` and then two sentinel requests sent straight to it one after the other.

    gunicorn logs a request after its thread has sent the answer, so a log line can trail the
    answer a little; the sentinels give any extra request time to show up in the count.
    """
    deadline = time.time() + 30

    def lines() -> list[str]:
        return stack["access"].read_text().splitlines() if stack["access"].exists() else []

    def count() -> int:
        return sum(1 for line in lines() if line.split(" ")[0] == path)

    while count() < expected and time.time() < deadline:
        time.sleep(0.05)
    for _ in range(2):
        sentinel = f"/version?sentinel={time.monotonic_ns()}"
        fetch(stack["app"] + sentinel)
        while not any(line.startswith(sentinel + " ") for line in lines()):
            assert time.time() < deadline, "the app's access log never showed the sentinel"
            time.sleep(0.05)
    return count()


def poller(body: bytes) -> str:
    return html.unescape(re.search(rb'id="poller"[^>]*hx-get="([^"]+)"', body).group(1).decode())


def test_identical_polls_in_one_tick_reach_the_app_once(stack):
    base = stack["base"]
    status, page, headers = fetch(base + "/projects/p")
    assert status == 200 and headers["Cache-Control"].startswith("public")
    poll = poller(page)
    results: list[tuple[int, str]] = []

    def one() -> None:
        status, _, headers = fetch(base + poll)
        results.append((status, headers.get("X-Cache-Status", "")))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results += [(s, h.get("X-Cache-Status", "")) for s, _, h in
                (fetch(base + poll) for _ in range(20))]
    assert [status for status, _ in results] == [204] * 40
    assert app_requests(stack, poll, 1) == 1
    assert sum(1 for _, cache in results if cache == "HIT") >= 39
    # The page itself: a second viewer's copy comes from nginx too.
    assert fetch(base + "/projects/p")[2]["X-Cache-Status"] == "HIT"
    assert app_requests(stack, "/projects/p?", 1) == 1


def test_the_write_cookie_is_never_answered_from_the_cache(stack):
    base, cookie = stack["base"], {"Cookie": f"trackio_write_token={TOKEN}"}
    anonymous = fetch(base + "/projects/p/runs")
    assert anonymous[0] == 200 and b'name="csrf"' not in anonymous[1]
    assert fetch(base + "/projects/p/runs")[2]["X-Cache-Status"] == "HIT"
    for attempt in range(3):
        status, body, headers = fetch(base + "/projects/p/runs", cookie)
        assert status == 200 and b'name="csrf"' in body  # the holder's own page, forms and all
        assert headers["X-Cache-Status"] == "BYPASS"
        assert headers["Cache-Control"] == "private, no-store"
        assert app_requests(stack, "/projects/p/runs?", 2 + attempt) == 2 + attempt
    # The holder's page was not stored: the next anonymous viewer still gets no forms.
    status, body, headers = fetch(base + "/projects/p/runs")
    assert b'name="csrf"' not in body and headers["X-Cache-Status"] == "HIT"
    # A token in the URL or a header never gets (or makes) a cached answer either.
    _, _, headers = fetch(base + "/projects/p/runs", {"X-Trackio-Write-Token": TOKEN})
    assert headers["X-Cache-Status"] == "BYPASS"
    assert app_requests(stack, "/projects/p/runs?", 5) == 5


def test_a_chart_image_is_drawn_once_for_every_viewer_of_a_version(stack):
    base = stack["base"]
    _, page, _ = fetch(base + "/projects/p")
    link = html.unescape(re.search(rb'<a href="([^"]+)" data-tool="image-link-png"', page)
                         .group(1).decode())
    answers = [fetch(base + link) for _ in range(10)]
    assert {status for status, _, _ in answers} == {200}
    assert {body[:8] for _, body, _ in answers} == {b"\x89PNG\r\n\x1a\n"}
    assert [h["X-Cache-Status"] for _, _, h in answers[1:]] == ["HIT"] * 9
    assert app_requests(stack, link, 1) == 1
    # Revalidation through the proxy: the ETag is the app's.
    etag = answers[0][2]["ETag"]
    assert fetch(base + link, {"If-None-Match": etag})[0] == 304


def test_a_closed_history_chunk_reaches_the_app_once_even_after_new_rows(stack, project_db):
    from trackio_flask.history_chunks import CHUNK_ROWS

    project_db.log_many("gamma", range(2 * CHUNK_ROWS + 10), lambda s: {"train/loss": 1 / (s + 1)})
    base = stack["base"]
    status, body, headers = fetch(base + "/projects/p/history")
    assert status == 200 and headers["Cache-Control"].startswith("public, max-age=0, s-maxage=")
    gamma = next(run for run in orjson.loads(body)["runs"] if run["name"] == "gamma")
    chunk = gamma["metrics"]["chunks"][0]
    first = fetch(base + chunk)
    assert first[0] == 200 and first[2]["X-Cache-Status"] == "MISS"
    assert first[2]["Cache-Control"] == "public, max-age=31536000, immutable"
    assert fetch(base + chunk)[2]["X-Cache-Status"] == "HIT"
    # The run goes on: rows past the chunk change nothing about it, nginx keeps answering.
    project_db.log_many("gamma", range(2 * CHUNK_ROWS + 10, 3 * CHUNK_ROWS + 10),
                        lambda s: {"train/loss": 1 / (s + 1)})
    again = fetch(base + chunk)
    assert again[2]["X-Cache-Status"] == "HIT" and again[1] == first[1]
    assert app_requests(stack, chunk, 1) == 1
    # A write-token holder still goes to the app and gets a private copy.
    cookie = {"Cookie": f"trackio_write_token={TOKEN}"}
    private = fetch(base + chunk, cookie)
    assert private[2]["X-Cache-Status"] == "BYPASS"
    assert private[2]["Cache-Control"] == "private, no-store"
    assert app_requests(stack, chunk, 2) == 2


def test_rate_limits_count_each_client_behind_a_front_proxy_apart(limited_stack):
    base = limited_stack["base"]
    # A cookie keeps the requests out of the cache, so each one reaches the app's limiter.
    def page(forwarded_for: str) -> int:
        return fetch(base + "/projects/p", {"X-Forwarded-For": forwarded_for,
                                            "Cookie": "viewer=1"})[0]

    assert [page("203.0.113.1") for _ in range(3)] == [200] * 3
    assert page("203.0.113.1") == 429
    # Another viewer behind the same balancer has a budget of its own…
    assert page("203.0.113.2") == 200
    # …and a viewer cannot borrow it by writing its own X-Forwarded-For: the balancer appends
    # the address it saw, and only that one is believed.
    assert page("203.0.113.2, 203.0.113.1") == 429
