"""Flask extensions, created unbound and bound in the app factory, and the services it builds."""

from __future__ import annotations

import math
import threading

from flask import Flask, current_app
from flask_caching import Cache
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from . import charts, query_sandbox
from .ingest import Ingest
from .live import ProjectStore
from .store import open_store
from .trackio_api import TrackioApi

cache = Cache()
limiter = Limiter(key_func=get_remote_address)
compress = Compress()


def init_services(app: Flask) -> None:
    """Build the app's one project store (reads), ingest service (writes) and Trackio API."""
    config = app.config
    series_store = open_store(config["DATA_DIR"], config["SERIES_STORE_DIR"],
                              int(config["SERIES_STORE_MB"]))
    app.extensions["trackio_store"] = ProjectStore(config["DATA_DIR"],
                                                   int(config["SERIES_MEMORY_MB"]) * 2**20,
                                                   series_store)
    app.extensions["trackio_ingest"] = Ingest(config["DATA_DIR"], config["SQLITE_JOURNAL_MODE"],
                                              float(config["BUSY_TIMEOUT_S"]))
    # The chart specs compile in a child process (seconds, once per server process): start it
    # now so the first page does not wait for it.
    threading.Thread(target=charts.warm, name="warm-chart-specs", daemon=True).start()
    query_memory = int(config["QUERY_MEMORY_MB"]) * 2**20
    limits = query_sandbox.Limits(
        wall_s=float(config["QUERY_TIMEOUT_S"]), cpu_s=max(1, math.ceil(config["QUERY_TIMEOUT_S"])),
        memory_bytes=query_memory, heap_bytes=query_memory * 3 // 8,
        max_bytes=int(config["API_ANSWER_MAX_MB"]) * 2**20 // 2)
    app.extensions["trackio_api"] = TrackioApi(
        config["DATA_DIR"], app.extensions["trackio_store"], app.extensions["trackio_ingest"],
        query_limits=limits, query_slots=int(config["QUERY_SLOTS"]),
        heavy_slots=int(config["HEAVY_READ_SLOTS"]),
        answer_max_bytes=int(config["API_ANSWER_MAX_MB"]) * 2**20)


def store() -> ProjectStore:
    """The current app's project store (decoded series, caught up on demand)."""
    return current_app.extensions["trackio_store"]


def ingest() -> Ingest:
    """The current app's ingest service (the only writer of project databases)."""
    return current_app.extensions["trackio_ingest"]


def trackio_api() -> TrackioApi:
    """The current app's Trackio API (method per API name)."""
    return current_app.extensions["trackio_api"]


def page_limit() -> str:
    return current_app.config["RATELIMIT_PAGES"]


def refresh_limit() -> str:
    return current_app.config["RATELIMIT_REFRESH"]


def api_limit() -> str:
    return current_app.config["RATELIMIT_API"]


def write_limit() -> str:
    return current_app.config["RATELIMIT_WRITE"]


def bad_token_limit() -> str:
    return current_app.config["RATELIMIT_BAD_TOKEN"]
