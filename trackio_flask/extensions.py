"""Flask extensions, created unbound and bound in the app factory."""

from __future__ import annotations

from flask import current_app, request
from flask_caching import Cache
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

cache = Cache()
limiter = Limiter(key_func=get_remote_address)
compress = Compress()


def refresh_limit() -> str:
    return current_app.config["RATELIMIT_REFRESH"]


def api_limit() -> str:
    return current_app.config["RATELIMIT_API"]


def write_limit() -> str:
    return current_app.config["RATELIMIT_WRITE"]


def write_token_key() -> str:
    """Writes are limited per token (hashed: tokens never reach a log or a limiter key)."""
    import hashlib

    token = request.headers.get("X-Trackio-Write-Token") or request.args.get("write_token") or ""
    return "w:" + hashlib.sha256(token.encode()).hexdigest()[:16]
