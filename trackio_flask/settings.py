"""Every trackio_flask setting in one table: name, environment variable, default, help."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SettingError(ValueError):
    """A setting has a value that cannot be used."""


def parse_bool(text: str) -> bool:
    """Accept only the spellings nobody can misread."""
    lowered = text.strip().lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise ValueError("expected true/false or 1/0")


def parse_positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("expected a positive number")
    return value


def parse_seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 60:
        raise ValueError("expected seconds from 0 to 60")
    return value


def parse_positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("expected a positive whole number")
    return value


def parse_hops(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 10:
        raise ValueError("expected a proxy hop count from 0 to 10")
    return value


def parse_non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("expected a whole number, 0 or more")
    return value


def parse_journal_mode(text: str) -> str:
    value = text.strip().upper()
    if value not in ("WAL", "DELETE", "TRUNCATE", "PERSIST"):
        raise ValueError("expected WAL, DELETE, TRUNCATE or PERSIST")
    return value


def parse_optional_str(text: str) -> str | None:
    return text or None


def parse_plot_order(text: str) -> tuple[str, ...]:
    """Trackio's comma-separated list of metric names and `*` patterns."""
    patterns = tuple(item.strip() for item in text.split(",") if item.strip())
    if len(patterns) > 100 or any(len(pattern) > 200 for pattern in patterns):
        raise ValueError("expected at most 100 patterns of at most 200 characters")
    return patterns


def parse_networks(text: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks (`10.0.0.0/8,127.0.0.1`); empty: any."""
    import ipaddress

    networks = tuple(item.strip() for item in text.split(",") if item.strip())
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
    return networks


def parse_frame_ancestors(text: str) -> str:
    """CSP frame-ancestors sources: `*`, `'self'`, `'none'` or origins, space-separated."""
    value = " ".join(text.split())
    if not value or any(c in value for c in ";,\"\r\n"):
        raise ValueError("expected CSP sources such as * or 'self' https://huggingface.co")
    return value


def parse_path(text: str) -> Path:
    if not text.strip():
        raise ValueError("expected a folder path")
    return Path(text).expanduser()


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: Any
    parse: Callable[[str], Any]
    help: str


def _default_data_dir() -> Path:
    return Path("~/.cache/huggingface/trackio").expanduser()


SETTINGS: tuple[Setting, ...] = (
    Setting("DATA_DIR", "TRACKIO_DIR", None, parse_path,
            "Folder of project databases (`<project>.db`); Trackio's own variable. "
            "Default `~/.cache/huggingface/trackio`."),
    Setting("WRITE_TOKEN", "TRACKIO_WRITE_TOKEN", None, parse_optional_str,
            "Token that ingest, rename and delete require; unset means writes are refused."),
    Setting("POLL_LOCAL_S", "TRACKIO_FLASK_POLL_LOCAL_S", 1.0, parse_positive_float,
            "Refresh interval in seconds when the page is served from localhost."),
    Setting("POLL_REMOTE_S", "TRACKIO_FLASK_POLL_REMOTE_S", 2.0, parse_positive_float,
            "Refresh interval for other hosts."),
    Setting("POLL_HF_S", "TRACKIO_FLASK_POLL_HF_S", 3.5, parse_positive_float,
            "Refresh interval for `*.hf.space` hosts (Hugging Face answers storms with 429)."),
    Setting("POLL_IDLE_AFTER_S", "TRACKIO_FLASK_POLL_IDLE_AFTER_S", 30.0, parse_positive_float,
            "After this many seconds without new data the interval doubles, step by step."),
    Setting("POLL_IDLE_CAP_S", "TRACKIO_FLASK_POLL_IDLE_CAP_S", 30.0, parse_positive_float,
            "Largest interval the idle back-off reaches."),
    Setting("POLL_COOLDOWN_S", "TRACKIO_FLASK_POLL_COOLDOWN_S", 15.0, parse_positive_float,
            "Pause after a 429/503 that carries no Retry-After (e.g. from a proxy); jitter is added."),
    Setting("TICK_S", "TRACKIO_FLASK_TICK_S", 1.0, parse_seconds,
            "Pages and polls catch a project up at most once per tick, however many commits "
            "arrive; every viewer in a tick shares one version (0: on every request)."),
    Setting("MAX_POINTS", "TRACKIO_FLASK_MAX_POINTS", 1500, parse_positive_int,
            "Cap on points per series in one chart answer (the budget is ~2 per pixel column, "
            "shared by a chart's runs; downsampled series carry a min/max band)."),
    Setting("SERIES_MEMORY_MB", "TRACKIO_FLASK_SERIES_MEMORY_MB", 512, parse_positive_int,
            "Memory for in-process decoded series; least recently used projects are dropped first."),
    Setting("SERIES_STORE_DIR", "TRACKIO_FLASK_STORE_DIR", None, parse_path,
            "Folder of the columnar series store (Arrow files derived from the project databases, "
            "shared by workers, rebuilt when deleted). Default `<TRACKIO_DIR>/.trackio_flask/series`"
            ", or `$XDG_CACHE_HOME/trackio_flask/series` when the data folder is read-only."),
    Setting("SERIES_STORE_MB", "TRACKIO_FLASK_STORE_MB", 8192, parse_non_negative_int,
            "Disk cap of the series store; least recently used projects are deleted first "
            "(0: no store, every process decodes the databases itself)."),
    Setting("CACHE_ENTRY_MAX_KB", "TRACKIO_FLASK_CACHE_ENTRY_MAX_KB", 4096, parse_positive_int,
            "Larger rendered fragments are not cached (entries are bounded in bytes, not only count)."),
    Setting("CACHE_MEMORY_MB", "TRACKIO_FLASK_CACHE_MEMORY_MB", 64, parse_positive_int,
            "Memory for rendered pages and fragments in the default in-process cache; least "
            "recently used entries go first."),
    Setting("RATELIMIT_PAGES", "TRACKIO_FLASK_RATELIMIT_PAGES", "120 per minute", str,
            "Flask-Limiter limit per client on full pages (a viewer loads one page per visit)."),
    # A visible tab polls once per POLL_LOCAL_S (1 s) on localhost, 60 a minute (hidden tabs
    # send nothing): 720 lets twelve tabs of one address poll, and a 204 costs ~1 ms.
    Setting("RATELIMIT_REFRESH", "TRACKIO_FLASK_RATELIMIT_REFRESH", "720 per minute", str,
            "Flask-Limiter limit per client on the refresh fragment (twelve tabs polling each "
            "second)."),
    # Measured with trackio 0.43's client: each trackio.init() makes 2 reads (3 when it
    # resumes a run) and the CLI 1 per command, so 32 runs started at once make 64-96 reads;
    # 300 covers three such launches a minute plus the CLI, and still stops a scraper that
    # polls faster than 5 calls a second. Unknown API names do not count.
    Setting("RATELIMIT_API", "TRACKIO_FLASK_RATELIMIT_API", "300 per minute", str,
            "Flask-Limiter limit per client on Trackio's read API (unknown names do not count)."),
    # Measured: a logging run sends at most one bulk_log per 0.5 s tick, plus per tick one
    # bulk_upload_media and one /api/upload per media file, plus a system sample every 10 s:
    # about 366 calls a minute. 32 such runs share one token: 11,712 a minute.
    Setting("RATELIMIT_WRITE", "TRACKIO_FLASK_RATELIMIT_WRITE", "12000 per minute", str,
            "Flask-Limiter limit per write token on ingest, uploads and run changes."),
    Setting("RATELIMIT_BAD_TOKEN", "TRACKIO_FLASK_RATELIMIT_BAD_TOKEN", "10 per minute", str,
            "Flask-Limiter limit per client address on writes refused for a missing or wrong "
            "token (slows token guessing; the real token's budget is untouched)."),
    Setting("PROXY_HOPS", "TRACKIO_FLASK_PROXY_HOPS", 0, parse_hops,
            "Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0: none)."),
    Setting("TRUSTED_PROXIES", "TRACKIO_FLASK_TRUSTED_PROXIES", (), parse_networks,
            "Addresses or networks (comma-separated CIDRs) of the proxies PROXY_HOPS counts; a "
            "request from any other address has its X-Forwarded-* headers ignored (empty: any)."),
    Setting("FRAME_ANCESTORS", "TRACKIO_FLASK_FRAME_ANCESTORS", "*", parse_frame_ancestors,
            "CSP frame-ancestors of read-only views (`*` keeps them embeddable in model cards "
            "and other sites); anything served to a holder of the write token gets `'self'`."),
    Setting("SQLITE_JOURNAL_MODE", "TRACKIO_SQLITE_JOURNAL_MODE", "WAL", parse_journal_mode,
            "Journal mode for databases the app creates; use DELETE on network storage. Trackio's name."),
    Setting("BUSY_TIMEOUT_S", "TRACKIO_FLASK_BUSY_TIMEOUT_S", 5.0, parse_positive_float,
            "How long a write waits for a locked database before answering 503."),
    Setting("MAX_BODY_MB", "TRACKIO_FLASK_MAX_BODY_MB", 16, parse_positive_int,
            "Largest accepted request body; bigger ones get 413."),
    Setting("PLOT_ORDER", "TRACKIO_PLOT_ORDER", (), parse_plot_order,
            "Comma-separated metric names and `*` patterns (`train/loss,train/*,eval/*`) that "
            "order sections and panels on the metrics page; Trackio's own variable."),
    Setting("QUERY_TIMEOUT_S", "TRACKIO_FLASK_QUERY_TIMEOUT_S", 5.0, parse_positive_float,
            "Wall-clock and CPU budget of one `query_project` statement; its child process is "
            "killed when it runs out."),
    Setting("QUERY_MEMORY_MB", "TRACKIO_FLASK_QUERY_MEMORY_MB", 256, parse_positive_int,
            "Memory one `query_project` child may use (address space; SQLite's heap gets "
            "3/8 of it, temporary data stays in memory and nothing is written to disk)."),
    Setting("QUERY_SLOTS", "TRACKIO_FLASK_QUERY_SLOTS", 2, parse_positive_int,
            "`query_project` statements running at once; more are answered 503 with "
            "Retry-After, never queued."),
    Setting("HEAVY_READ_SLOTS", "TRACKIO_FLASK_HEAVY_READ_SLOTS", 2, parse_positive_int,
            "Trackio API reads whose cost grows with a run's rows (logs, snapshots, metric "
            "values, summaries, traces) running at once; more are answered 503 with Retry-After."),
    # Chart images and badges (views/images.py): a render costs ~0.1-0.3 s of a child's CPU;
    # cached answers (same version and view) and 304s do not count against the budget.
    Setting("RATELIMIT_IMAGES", "TRACKIO_FLASK_RATELIMIT_IMAGES", "30 per minute", str,
            "Flask-Limiter limit per client on chart images that must be drawn (cached images "
            "and revalidations are free)."),
    Setting("IMAGE_SLOTS", "TRACKIO_FLASK_IMAGE_SLOTS", 1, parse_positive_int,
            "Chart images drawn at once per server process (each slot keeps one renderer child)."),
    Setting("IMAGE_TIMEOUT_S", "TRACKIO_FLASK_IMAGE_TIMEOUT_S", 20.0, parse_positive_float,
            "Wall-clock budget of one chart image; its renderer child is killed past it."),
    Setting("API_ANSWER_MAX_MB", "TRACKIO_FLASK_API_ANSWER_MAX_MB", 32, parse_positive_int,
            "Largest answer of a Trackio API read, counted in bytes on the wire (`query_project`: "
            "half of it); bigger ones are refused with a message saying how to ask for less."),
    Setting("MAX_UPLOAD_MB", "TRACKIO_FLASK_MAX_UPLOAD_MB", 64, parse_positive_int,
            "Largest media upload (`/api/upload`, one request) from Trackio clients; bigger get 413."),
    Setting("SERVER_THREADS", "TRACKIO_FLASK_SERVER_THREADS", 16, parse_positive_int,
            "Requests the image's server (granian, `trackio_flask.rsgi`) runs at once; a request "
            "takes a thread only once its headers and body have arrived."),
    Setting("BUFFERED_BODIES_MB", "TRACKIO_FLASK_BUFFERED_BODIES_MB", 256, parse_positive_int,
            "Request bodies the image's server holds at once while they arrive; a body that "
            "would pass it gets 503 with Retry-After."),
)


def load_settings(environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return defaults, then environment values, then explicit overrides; reject bad values."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = setting.default
        raw = environ.get(setting.env)
        if raw is not None:
            try:
                value = setting.parse(raw)
            except ValueError as exc:
                raise SettingError(f"{setting.env}={raw!r} is not valid: {exc}") from None
        values[setting.name] = value
    for name, value in (overrides or {}).items():
        values[name] = value
    if values["DATA_DIR"] is None:
        values["DATA_DIR"] = _default_data_dir()
    values["DATA_DIR"] = Path(values["DATA_DIR"])
    if values["POLL_HF_S"] < 3.5:
        raise SettingError("TRACKIO_FLASK_POLL_HF_S must be at least 3.5 seconds")
    return values
