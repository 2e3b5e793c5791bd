"""Flask extensions, created unbound and bound in the app factory, and the services it builds."""

from __future__ import annotations

import threading

from flask import Flask, current_app
from flask_caching import Cache
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from . import charts
from .ingest import Ingest
from .live import ProjectStore
from .trackio_api import TrackioApi

cache = Cache()
limiter = Limiter(key_func=get_remote_address)
compress = Compress()


def init_services(app: Flask) -> None:
    """Build the app's one project store (reads), ingest service (writes) and Trackio API."""
    config = app.config
    app.extensions["trackio_store"] = ProjectStore(config["DATA_DIR"],
                                                   int(config["SERIES_MEMORY_MB"]) * 2**20)
    app.extensions["trackio_ingest"] = Ingest(config["DATA_DIR"], config["SQLITE_JOURNAL_MODE"],
                                              float(config["BUSY_TIMEOUT_S"]))
    # The chart specs compile in a child process (seconds, once per server process): start it
    # now so the first page does not wait for it.
    threading.Thread(target=charts.warm, name="warm-chart-specs", daemon=True).start()
    app.extensions["trackio_api"] = TrackioApi(config["DATA_DIR"], app.extensions["trackio_store"],
                                               app.extensions["trackio_ingest"])


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
