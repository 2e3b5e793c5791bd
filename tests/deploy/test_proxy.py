"""Behind a real nginx, under /trackio/, with two gunicorn workers sharing Redis limits and cache."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from servers import free_port

pytestmark = pytest.mark.deploy

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS = "redis://127.0.0.1:6379/0"


def redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS, socket_timeout=1).ping())
    except Exception:
        return False


def require(condition: bool, what: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI (.ci/run installs and starts it)")
    pytest.skip(f"{what} is not available here")


NGINX_CONF = """
worker_processes 1;
daemon off;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  access_log {tmp}/nginx-access.log;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
{snippet}
  server {{
    listen 127.0.0.1:{port};
    location /trackio/ {{
      proxy_pass http://127.0.0.1:{upstream}/;
      include {tmp}/trackio-proxy.conf;
    }}
  }}
}}
"""


def readme_snippet() -> tuple[str, str]:
    """The README's nginx snippet: (http-level lines, location-level lines)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```nginx\n(.*?)```", readme, re.S).group(1)
    http_part = re.search(r"# http \{\}\n(.*?)# location", block, re.S).group(1)
    location = re.search(r"location /trackio/ \{\n(.*?)\n\}", block, re.S).group(1)
    location = "\n".join(line for line in location.splitlines() if "proxy_pass" not in line)
    return http_part, location


@pytest.fixture
def stack(tmp_path, data_dir, project_db):
    require(Path(NGINX).exists(), "nginx")
    require(redis_up(), "Redis on 127.0.0.1:6379")
    gunicorn_port, nginx_port = free_port(), free_port()
    prefix = f"tf-test-{uuid.uuid4().hex[:8]}:"
    env = {**os.environ, "TRACKIO_DIR": str(data_dir), "TRACKIO_FLASK_PROXY_HOPS": "1",
           "TRACKIO_FLASK_RATELIMIT_STORAGE_URI": REDIS,
           "TRACKIO_FLASK_RATELIMIT_KEY_PREFIX": prefix,
           "TRACKIO_FLASK_RATELIMIT_REFRESH": "6 per minute",
           "TRACKIO_FLASK_CACHE_TYPE": "RedisCache", "TRACKIO_FLASK_CACHE_REDIS_URL": REDIS,
           "TRACKIO_FLASK_CACHE_KEY_PREFIX": prefix,
           # the fixture data is months old; keep the idle back-off out of these tests
           "TRACKIO_FLASK_POLL_IDLE_AFTER_S": "1e9"}
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
    app_log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115
    app = subprocess.Popen([gunicorn, "-w", "2", "-b", f"127.0.0.1:{gunicorn_port}",
                            "trackio_flask:create_app()"], env=env, stdout=app_log,
                           stderr=subprocess.STDOUT)
    http_part, location = readme_snippet()
    (tmp_path / "trackio-proxy.conf").write_text(location)
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / folder).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp_path, port=nginx_port, upstream=gunicorn_port,
                                      snippet=http_part))
    proxy = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{nginx_port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/trackio/version", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail("the stack did not come up: " + (tmp_path / "gunicorn.log").read_text()[-2000:])
    yield {"base": base, "log": tmp_path / "gunicorn.log"}
    for proc in (proxy, app):
        proc.terminate()
        proc.wait(timeout=10)
    app_log.close()


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


LINK = re.compile(rb'(?:href|src|action|hx-get)="([^"]+)"')


def test_every_link_and_asset_works_under_the_prefix(stack):
    base = stack["base"]
    seen, queue, bad = set(), ["/trackio/"], []
    while queue and len(seen) < 200:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        status, body, headers = fetch(base + path)
        if status not in (200, 204):
            bad.append((path, status))
            continue
        if "text/html" not in headers.get("Content-Type", ""):
            continue
        for raw in LINK.findall(body):
            link = html.unescape(raw.decode())
            if link.startswith(("data:", "#", "http")) and not link.startswith(base):
                continue
            target = urlparse(urljoin(base + path, link))
            if not target.path.startswith("/trackio/"):
                bad.append((f"{path} -> {link}", "outside the prefix"))
                continue
            if "/refresh" in target.path:
                continue
            queue.append(target.path + (f"?{target.query}" if target.query else ""))
    assert not bad, bad
    assert any("/static/vendor/vega-6.2.0.min.js" in p for p in seen)
    assert any(p.startswith("/trackio/projects/p/runs/") for p in seen)


def test_refresh_works_through_the_proxy_and_sees_the_forwarded_host(stack, project_db):
    base, space = stack["base"], {"Host": "team.hf.space"}
    status, body, _ = fetch(base + "/trackio/projects/p", space)
    assert status == 200
    poller = html.unescape(re.search(rb'id="poller"[^>]*hx-get="([^"]+)"', body).group(1).decode())
    assert poller.startswith("/trackio/projects/p/refresh?")
    assert b'hx-trigger="every 3.5s' in body
    assert fetch(base + poller, space)[0] == 204
    project_db.log("alpha", 50, {"train/loss": 0.01})
    # A worker catches the project up once per tick (TICK_S): poll like the page does.
    deadline = time.time() + 30
    status, fragment = 204, b""
    while status == 204 and time.time() < deadline:
        time.sleep(0.25)
        status, fragment, _ = fetch(base + poller, space)
    assert status == 200 and b'hx-get="/trackio/projects/p/refresh?' in fragment


def test_html_and_json_are_gzipped_by_the_proxy_or_the_app(stack):
    status, _, headers = fetch(stack["base"] + "/trackio/projects/p",
                               {"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"


def test_two_workers_share_one_rate_limit_budget_in_redis(stack):
    base = stack["base"]
    _, body, _ = fetch(base + "/trackio/projects/p")
    poller = html.unescape(re.search(rb'id="poller"[^>]*hx-get="([^"]+)"', body).group(1).decode())
    statuses = [fetch(base + poller)[0] for _ in range(14)]
    assert statuses.count(204) == 6, statuses  # per-worker memory:// would allow up to 12
    assert statuses.count(429) == 8
    status, _, headers = fetch(base + poller)
    assert status == 429 and int(headers["Retry-After"]) >= 1


def test_spoofed_forwarded_for_cannot_dodge_the_limit_through_the_proxy(stack):
    base = stack["base"]
    _, body, _ = fetch(base + "/trackio/projects/p")
    poller = html.unescape(re.search(rb'id="poller"[^>]*hx-get="([^"]+)"', body).group(1).decode())
    statuses = [fetch(base + poller, {"X-Forwarded-For": f"10.9.8.{n}"})[0] for n in range(10)]
    assert statuses.count(429) >= 4
