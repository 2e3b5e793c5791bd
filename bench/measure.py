"""HTTP timing on loopback, the trackio_flask refresh protocol as a viewer follows it, and stats."""

from __future__ import annotations

import gzip
import html
import http.client
import json
import re
import statistics
import time
from urllib.parse import urlparse

import brotli

BROWSER_ENCODINGS = "gzip, br"


def server_ms(header: str) -> float | None:
    """The app's time from a `Server-Timing: app;dur=12.3` header (ours; trackio sends none)."""
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            return float(params[4:])
    return None


class Http:
    """One keep-alive connection; returns (status, decoded body, seconds).

    `last_wire_bytes` holds the size of the last body as sent (compressed, if it was);
    `last_server_ms` the app's own time on it (its Server-Timing header), None without one.
    """

    def __init__(self, base: str, host_header: str | None = None) -> None:
        parsed = urlparse(base)
        self.host, self.port = parsed.hostname, parsed.port
        self.host_header = host_header
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.last_wire_bytes = 0
        self.last_server_ms: float | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        headers = {"Accept-Encoding": BROWSER_ENCODINGS, **(headers or {})}
        if self.host_header:
            headers["Host"] = self.host_header
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        seconds = time.perf_counter() - started
        self.last_wire_bytes = len(data)
        self.last_server_ms = server_ms(response.getheader("Server-Timing", ""))
        encoding = response.getheader("Content-Encoding", "")
        if encoding == "gzip":
            data = gzip.decompress(data)
        elif encoding == "br":
            data = brotli.decompress(data)
        return response.status, data, seconds

    def get(self, path: str) -> tuple[int, bytes, float]:
        return self.request("GET", path)

    def post_json(self, path: str, payload) -> tuple[int, bytes, float]:
        return self.request("POST", path, json.dumps(payload).encode(),
                            {"Content-Type": "application/json"})

    def close(self) -> None:
        self.conn.close()


POLL = re.compile(rb'id="poller"[^>]*hx-get="([^"]+)"')


def poll_url(body: bytes) -> str:
    match = POLL.search(body)
    if not match:
        raise RuntimeError("no poller in response")
    return html.unescape(match.group(1).decode())


class Viewer:
    """A dashboard tab of ours: loads the page, then follows the poller it is given."""

    def __init__(self, http_client: Http, project: str, query: str = "") -> None:
        self.http = http_client
        status, body, self.first_load_s = http_client.get(f"/projects/{project}?{query}")
        if status != 200:
            raise RuntimeError(f"page answered {status}")
        self.first_load_bytes = http_client.last_wire_bytes
        self.url = poll_url(body)

    def poll(self) -> tuple[int, int, float]:
        """One refresh: (status, bytes as sent, seconds)."""
        status, body, seconds = self.http.get(self.url)
        if status == 200:
            self.url = poll_url(body)
        return status, self.http.last_wire_bytes, seconds


def batch_payload(project: str, runs: int) -> dict:
    """What Trackio's Metrics page sends every tick."""
    return {"args": [], "kwargs": {"project": project, "scalar_only": True, "runs": [
        {"run": f"run-{r:03d}", "run_id": f"run{r:03d}"} for r in range(runs)]}}


def stats(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    if not ordered:
        return {"median_ms": float("nan"), "p95_ms": float("nan")}
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000}
