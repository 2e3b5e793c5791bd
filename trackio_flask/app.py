"""The app factory: settings, extensions, blueprints, error handlers and security headers."""

from __future__ import annotations

import logging
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, render_template, request, url_for
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from . import auth, mapped_pages, server_timing, shared_cache, storage, tabs, timestamps, view_state, writer
from ._version import __version__
from .extensions import cache, compress, init_services, limiter
from .params import CARRIED, THEMES, page_args, view_args
from .series import step_text
from .settings import SETTINGS, load_settings
from .views import (
    api,
    artifacts,
    compare,
    files,
    gallery,
    histograms,
    history,
    images,
    manage,
    media,
    pages,
    refresh,
    reports,
    series,
    settings_page,
    snapshot,
    sweep,
    traces,
)

log = logging.getLogger("trackio_flask")

EXTENSION_DEFAULTS: dict[str, Any] = {
    # One process, bounded in bytes (CACHE_MEMORY_MB); several workers share RedisCache instead.
    "CACHE_TYPE": "trackio_flask.memory_cache.BoundedMemoryCache",
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_THRESHOLD": 256,
    "RATELIMIT_STORAGE_URI": "memory://",
    # Explicit, because Flask-Limiter otherwise inherits "enabled" from the last app it served.
    "RATELIMIT_ENABLED": True,
    # Flask-Limiter would put Retry-After on every response; ours goes on 429s only.
    "RATELIMIT_HEADERS_ENABLED": False,
    "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/javascript", "application/javascript",
                           "application/json"],
    "COMPRESS_MIN_SIZE": 512,
    "COMPRESS_BR_LEVEL": 5,
    # Every static URL is versioned (vendor file names, ?v= content hashes), so cache for a year.
    "SEND_FILE_MAX_AGE_DEFAULT": 31_536_000,
}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors {ancestors}")


def asset_dirs() -> tuple[Path, Path]:
    """Find templates/ and static/: inside the installed package, or beside it in a checkout."""
    package = Path(__file__).resolve().parent
    for root in (package, package.parent):
        if (root / "templates").is_dir() and (root / "static").is_dir():
            return root / "templates", root / "static"
    raise RuntimeError(f"templates/ and static/ not found next to {package}")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the dashboard app: defaults, then environment, then `config`."""
    templates, static = asset_dirs()
    app = Flask(__name__, template_folder=str(templates), static_folder=str(static))
    app.config.update(EXTENSION_DEFAULTS)
    # Any Flask or extension key X can come from TRACKIO_FLASK_X (e.g. CACHE_TYPE).
    app.config.from_prefixed_env("TRACKIO_FLASK")
    config = dict(config or {})
    own = {setting.name for setting in SETTINGS}
    app.config.update(load_settings(overrides={k: v for k, v in config.items() if k in own}))
    app.config.update(config)
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_BODY_MB"]) * 2**20

    hops = int(app.config["PROXY_HOPS"])
    if hops:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, hops,  # type: ignore[method-assign]
                                       app.config["TRUSTED_PROXIES"])

    server_timing.init_app(app)
    _scope_mapped_pages(app)
    cache.init_app(app)
    limiter.init_app(app)
    # Registered before the compressor so that it runs after it: the ETag is of the sent bytes.
    shared_cache.init_app(app)
    # No COMPRESS_CACHE_*: flask-compress would key every non-static response alike and serve
    # one response's bytes for another. Static files are compressed once per browser (they are
    # cached for a year), pages and fragments per response.
    compress.init_app(app)
    _warn_if_limits_are_per_worker(app)
    init_services(app)
    auth.init_app(app)
    app.register_blueprint(manage.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(refresh.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(series.bp)
    app.register_blueprint(media.bp)
    for view in (gallery, histograms, reports, compare, sweep, traces, artifacts, files,
                 settings_page, images, snapshot, history):
        app.register_blueprint(view.bp)
    _register_error_handlers(app)
    _register_filters(app)
    app.after_request(_security_headers)
    return app


def _register_filters(app: Flask) -> None:
    hashes: dict[str, str] = {}

    @app.template_global("asset")
    def asset(filename: str) -> str:
        """A static URL that changes when the file does (so it may be cached for a year)."""
        if filename not in hashes:
            import hashlib

            content = (Path(app.static_folder or "") / filename).read_bytes()
            hashes[filename] = hashlib.blake2b(content, digest_size=5).hexdigest()
        return url_for("static", filename=filename, v=hashes[filename])

    app.add_template_filter(timestamps.to_display, "datetime")
    app.add_template_filter(step_text, "step")
    app.add_template_global(page_args, "page_args")
    app.add_template_global(view_args, "view_args")
    app.add_template_global(lambda endpoint: endpoint in app.view_functions, "has_endpoint")
    app.add_template_global(CARRIED, "carried_params")

    @app.template_global("request_theme")
    def request_theme() -> str:
        """The address's theme on pages without a view (projects, errors); else "system"."""
        theme = request.args.get("__theme") or request.args.get("theme") or "system"
        return theme if theme in THEMES else "system"

    @app.context_processor
    def notices() -> dict[str, Any]:
        return {"notices": g.get("notices", ())}
    app.add_template_global(tabs.availability, "tab_availability")
    app.add_template_global(__version__, "app_version")
    app.add_template_global(view_state.view_snapshot, "view_snapshot")


def gunicorn_workers(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """How many gunicorn workers this process belongs to (1 when not under gunicorn)."""
    argv = sys.argv if argv is None else argv
    environ = dict(os.environ) if environ is None else environ
    if not argv or "gunicorn" not in Path(argv[0]).name:
        return 1
    args = argv[1:] + shlex.split(environ.get("GUNICORN_CMD_ARGS", ""))
    workers = int(environ.get("WEB_CONCURRENCY", "1") or 1)
    for index, arg in enumerate(args):
        if arg in ("-w", "--workers") and index + 1 < len(args):
            workers = int(args[index + 1])
        elif arg.startswith("--workers="):
            workers = int(arg.split("=", 1)[1])
        elif arg.startswith("-w") and arg[2:].isdigit():
            workers = int(arg[2:])
    return workers


def _warn_if_limits_are_per_worker(app: Flask) -> None:
    workers = gunicorn_workers()
    if workers > 1 and str(app.config["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
        log.warning(
            "rate limits use memory:// storage in %d gunicorn workers, so every worker keeps its "
            "own budget (clients get %dx the limit). Set TRACKIO_FLASK_RATELIMIT_STORAGE_URI="
            "redis://... or run one worker with threads (-w 1 --threads 8).", workers, workers)


class TrustedProxyFix:
    """ProxyFix for requests that come from a trusted proxy address only: with nothing in
    front, a client's own X-Forwarded-For would otherwise buy it a fresh rate-limit budget."""

    def __init__(self, app: Any, hops: int, networks: tuple[str, ...]) -> None:
        import ipaddress

        self.app = app
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusted(self, address: str | None) -> bool:
        import ipaddress

        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def _scope_mapped_pages(app: Flask) -> None:
    """A request lets go of the store pages its reads mapped when it ends (mapped_pages)."""

    @app.before_request
    def open_mapped_pages_scope() -> None:
        g.mapped_pages_scope = mapped_pages.open_scope()

    @app.teardown_request
    def close_mapped_pages_scope(_error: BaseException | None) -> None:
        token = g.pop("mapped_pages_scope", None)
        if token is not None:
            mapped_pages.close_scope(token)


def _security_headers(response: Response) -> Response:
    # Read-only views stay embeddable (FRAME_ANCESTORS); whatever a write-token holder sees
    # (rename and delete forms) may only be framed by this site.
    ancestors = "'self'" if auth.can_write() else current_app.config["FRAME_ANCESTORS"]
    response.headers.setdefault("Content-Security-Policy", CSP.format(ancestors=ancestors))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/version"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    if _wants_json():
        response = jsonify(error=message)
    elif request.headers.get("HX-Request"):
        # Fragment requests never swap error bodies; keep them tiny.
        response = Response(message, mimetype="text/plain")
    else:
        response = Response(render_template("error.html", status=status, message=message))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(storage.InvalidProjectName)
    def invalid_project(exc: Exception) -> Response:
        log.warning("400 invalid project name in %s", request.path)
        return _error(400, str(exc))

    @app.errorhandler(storage.ProjectNotFound)
    def missing_project(exc: Exception) -> Response:
        log.info("404 no such project: %r", str(exc))
        return _error(404, f"No project named {str(exc)!r}.")

    @app.errorhandler(storage.StorageBusy)
    @app.errorhandler(writer.DatabaseBusy)
    def busy(exc: Exception) -> Response:
        log.warning("503 database busy on %s: %s", request.path, exc)
        return _error(503, "The database is busy; try again shortly.", {"Retry-After": "2"})

    @app.errorhandler(storage.UnreadableDatabase)
    def unreadable(exc: Exception) -> Response:
        log.warning("422 unreadable database on %s: %s", request.path, exc)
        return _error(422, f"This project's database cannot be read: {exc}")

    @app.errorhandler(writer.StorageFull)
    def full(exc: Exception) -> Response:
        log.error("507 storage full on %s: %s", request.path, exc)
        return _error(507, f"The server's storage is full; nothing was written ({exc}).")

    @app.errorhandler(writer.CannotWrite)
    def cannot_write(exc: Exception) -> Response:
        log.warning("409 cannot write on %s: %s", request.path, exc)
        return _error(409, f"Nothing was written: {exc}")

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        wait = 1
        if current is not None:
            # reset_at comes from the limiter storage's clock; ask the same clock for "now".
            reset_time = current.window[0]
            wait = max(1, math.ceil(reset_time - time.time()))
        log.info("429 %s from %s (retry in %ss)", request.path, request.remote_addr, wait)
        return _error(429, f"Too many requests; retry in {wait} s.", {"Retry-After": str(wait)})

    @app.errorhandler(InternalServerError)
    def internal_error(exc: InternalServerError) -> Response:
        # Flask has logged the traceback already; the client gets a short answer in its format.
        return _error(500, "Internal error; the server log has the details.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        log.info("%s %s: %s", exc.code, request.path, exc.description)
        return _error(exc.code or 400, exc.description or exc.name)
