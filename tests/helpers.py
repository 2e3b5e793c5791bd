"""Small helpers for app tests: find the poller URL and the JSON islands in a response."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import trackio_flask

# The checkout whose package the tests imported: a child process must import the same one.
PACKAGE_ROOT = Path(trackio_flask.__file__).resolve().parents[1]


def poll_url(body: bytes) -> str:
    match = re.search(rb'id="poller"[^>]*hx-get="([^"]+)"', body)
    assert match, "page has no poller"
    return html.unescape(match.group(1).decode())


def poll_interval(body: bytes) -> float:
    match = re.search(rb'hx-trigger="every ([0-9.]+)s, poll-now"', body)
    assert match, "page has no polling trigger"
    return float(match.group(1))


def delta(body: bytes) -> dict:
    match = re.search(rb'<script type="application/json" id="delta"[^>]*>(.*?)</script>', body, re.S)
    assert match, "fragment has no delta"
    return json.loads(match.group(1))


def panel_data(body: bytes) -> list[list[dict]]:
    return [json.loads(m) for m in re.findall(
        rb'<script type="application/json" class="panel-data">(.*?)</script>', body, re.S)]


def assert_inert(body: str, where: str) -> None:
    """No hostile test string (tests' HOSTILE lists) reached the page as markup or a template."""
    assert "<img src=x" not in body, where
    assert "<script>alert" not in body and "</script><script>" not in body, where
    assert "' onmouseover" not in body, where
    assert ">49<" not in body, where  # {{7*7}} was never evaluated


def run_child(code: str, seconds: float, what: str) -> str:
    """Run Python code in a child process (same trackio_flask as the tests); its stdout.

    Fails, instead of hanging, when the child does not finish within `seconds`: work stuck
    inside C code (a regex match, one SQLite function) can only be timed out from outside.
    """
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT)] + [p for p in sys.path if p])}
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=seconds, env=env, cwd=PACKAGE_ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} did not answer within {seconds} s: the request holds its thread")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
