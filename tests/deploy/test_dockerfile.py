"""The Space image's contract, without a Docker engine: lint the Dockerfile, then run its CMD."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
pytestmark = pytest.mark.deploy


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def env_of() -> dict[str, str]:
    values: dict[str, str] = {}
    for verb, rest in instructions():
        if verb == "ENV":
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                values[key] = value.strip('"')
    return values


def cmd_of() -> list[str]:
    (rest,) = [rest for verb, rest in instructions() if verb == "CMD"]
    return json.loads(rest)


def test_dockerfile_lint():
    verbs = instructions()
    base = next(rest for verb, rest in verbs if verb == "FROM")
    assert re.fullmatch(r"python:3\.\d+-slim", base), "pin a slim Python base, not :latest"
    assert ("USER", "user") in verbs and "--uid 1000" in DOCKERFILE
    assert ("EXPOSE", "7860") in verbs
    assert [v for v, _ in verbs].index("USER") > [v for v, _ in verbs].index("RUN")
    assert isinstance(cmd_of(), list), "CMD in exec form so signals reach the server"
    assert "granian --interface rsgi --workers 1 " in cmd_of()[-1], \
        "one process: memory:// limits stay exact"
    assert "apt-get" not in DOCKERFILE and "curl" not in DOCKERFILE
    for path in ("trackio_flask", "templates", "static", "pyproject.toml"):
        assert re.search(rf"COPY .*{path}", DOCKERFILE), f"{path} not copied into the image"


def run_cmd(home: Path, mount: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Run the image's CMD with its ENV; `mount` stands in for the Space's /data."""
    port = free_port()
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the image has it on PATH
    env = {**os.environ, **env_of(), "HOME": str(home), "PORT": str(port), "PATH": path,
           **extra_env}
    env.pop("TRACKIO_DIR", None)
    env.pop("TRACKIO_SQLITE_JOURNAL_MODE", None)
    command = [re.sub(r"(?<![\w/])/data", str(mount), part) for part in cmd_of()]
    log = open(home / "gunicorn.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(command, env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/version", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the image's CMD did not start")


@pytest.mark.parametrize("mounted", [False, True], ids=["no_storage", "persistent_storage"])
def test_image_cmd_serves_on_the_port_and_takes_writes_with_the_secret_token(tmp_path, mounted):
    (tmp_path / "app").mkdir()
    mount = tmp_path / "mnt-data"
    if mounted:
        mount.mkdir()
    proc, url = run_cmd(tmp_path, mount, {"TRACKIO_WRITE_TOKEN": "space-secret"})
    try:
        body = json.dumps({"logs": [{"project": "space", "run": "r", "metrics": {"x": 1.0},
                                     "step": 0, "log_id": "one"}]}).encode()
        request = urllib.request.Request(url + "/api/bulk_log", data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "X-Trackio-Write-Token": "space-secret"})
        assert json.load(urllib.request.urlopen(request)) == {"data": None}
        # The first page waits for the chart specs to compile (seconds on a busy machine).
        page = urllib.request.urlopen(url + "/projects/space", timeout=60)
        assert page.status == 200
        if mounted:
            database = mount / "trackio" / "space.db"
            # network-backed storage: rollback journal, not WAL
            mode = sqlite3.connect(database).execute("PRAGMA journal_mode").fetchone()[0]
            assert mode == "delete"
        else:
            database = tmp_path / "app" / "data" / "space.db"
        assert database.exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_image_access_log_never_shows_the_write_token(tmp_path):
    (tmp_path / "app").mkdir()
    proc, url = run_cmd(tmp_path, tmp_path / "no-data", {"TRACKIO_WRITE_TOKEN": "space-secret"})
    try:
        opener = urllib.request.build_opener(NoRedirect)
        for method in ("GET", "HEAD"):
            request = urllib.request.Request(url + "/?write_token=space-secret&x=1", method=method)
            try:
                opener.open(request, timeout=5)
            except urllib.error.HTTPError as answer:
                assert answer.code == 303  # the token moves into a cookie
                assert "write_token" not in answer.headers["Location"]
        log = tmp_path / "gunicorn.log"
        deadline = time.time() + 20
        while time.time() < deadline and log.read_text().count("write_token=[redacted]") < 2:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    text = log.read_text()
    assert text.count("write_token=[redacted]") >= 2, text[-2000:]
    assert "space-secret" not in text


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Let a test see the 303 itself."""

    def redirect_request(self, *args, **kwargs):
        return None
