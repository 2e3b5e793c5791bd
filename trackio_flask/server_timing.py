"""`Server-Timing: app;dur=<ms>` on every answer: the time the app spent on it, compression
included, as the browser's network panel and the benchmarks read it (a client's clock also
counts the wire and its own parsing, which a zoom's "≤ 100 ms server time" goal excludes)."""

from __future__ import annotations

import time

from flask import Flask, Response, g


def init_app(app: Flask) -> None:
    """Register first: the clock starts before every other hook and stops after them all
    (after_request hooks run in reverse order of registration)."""
    app.before_request(_start)
    app.after_request(_stamp)


def _start() -> None:
    g.server_timing_started = time.perf_counter()


def _stamp(response: Response) -> Response:
    started = g.get("server_timing_started")
    if started is not None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
    return response
