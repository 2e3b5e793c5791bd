"""Write access: the one write-token lookup (also the write limiter's key), CSRF, cookie adoption."""

from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import quote, urlencode, urlparse

from flask import Flask, abort, current_app, g, redirect, request
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)
TOKEN_HEADER = "X-Trackio-Write-Token"
TOKEN_COOKIE = "trackio_write_token"
TOKEN_PARAM = "write_token"


def presented_token() -> str | None:
    """The token this request carries: header (API clients), cookie (browsers), or URL."""
    return (request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE)
            or request.args.get(TOKEN_PARAM))


def token_is_valid(token: str | None) -> bool:
    """Constant-time comparison against the configured token; no token configured → no writes."""
    expected = current_app.config.get("WRITE_TOKEN")
    if not expected or not token:
        return False
    return hmac.compare_digest(token.encode(), str(expected).encode())


def can_write() -> bool:
    """Whether this request holds the write token (computed once per request)."""
    if "can_write" not in g:
        g.can_write = token_is_valid(presented_token())
    return g.can_write


def limiter_key() -> str:
    """Writes are limited per token, hashed so tokens never reach a log or a limiter key."""
    token = presented_token() or ""
    return "w:" + hashlib.sha256(token.encode()).hexdigest()[:16]


def csrf_token(project: str) -> str:
    """Derived from the write token, so only a holder of the token can produce it."""
    secret = str(current_app.config.get("WRITE_TOKEN") or "").encode()
    return hmac.new(secret, f"csrf:{project}".encode(), hashlib.sha256).hexdigest()


def check_form_write(project: str) -> None:
    """Abort with 403 unless a same-origin form from a token holder changes `project`."""
    if not can_write():
        log.warning("403 run change without write access from %s", request.remote_addr)
        abort(403, description="Changing runs needs the write token (open a link with "
                               "?write_token=… once).")
    if not same_origin(referer_counts=True):
        log.warning("403 cross-origin run change from %s",
                    (request.headers.get("Origin") or request.headers.get("Referer") or "")[:100])
        abort(403, description="Cross-site request refused.")
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), csrf_token(project).encode()):
        log.warning("403 run change with a missing or wrong CSRF token")
        abort(403, description="The form expired; reload the page and try again.")


def same_origin(referer_counts: bool = False) -> bool:
    """Whether a browser says this request comes from one of our own pages.

    Sec-Fetch-Site is the browser's own verdict ("same-site" is another port or subdomain:
    not us); without it, Origin (or, for forms, Referer) must name this host. A request with
    none of them comes from no browser page (a browser sends Origin on every cross-site POST).
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin") or (
        request.headers.get("Referer") if referer_counts else None)
    return not origin or _host_of(origin) == request.host


def check_cookie_write() -> str | None:
    """Why an API write authorised by the browser cookie alone is refused, or None.

    Header-token clients (trackio's client sends X-Trackio-Write-Token) cannot be forged by
    another site; the cookie is sent by the browser, so a cookie write must come from our own
    page and carry JSON (a cross-site form or no-cors fetch can only send text/plain, forms
    or multipart without asking first).
    """
    if request.headers.get(TOKEN_HEADER) or request.args.get(TOKEN_PARAM) \
            or not request.cookies.get(TOKEN_COOKIE):
        return None
    if not same_origin():
        return "cross-site request refused"
    if request.mimetype != "application/json" and not request.path.endswith("/upload"):
        return "writes with the dashboard's cookie must send Content-Type: application/json"
    return None


def _host_of(url: str) -> str | None:
    """The host[:port] of a URL; None when it cannot be parsed (then it matches no host)."""
    try:
        return urlparse(url).netloc
    except ValueError:
        return None


def adopt_token_from_url() -> Response | None:
    """Move `?write_token=` into an HttpOnly cookie and strip it from the address bar."""
    if request.method not in ("GET", "HEAD") or TOKEN_PARAM not in request.args \
            or request.path.startswith("/api/"):
        return None
    token = request.args[TOKEN_PARAM]
    rest = [(k, v) for k, v in request.args.items(multi=True) if k != TOKEN_PARAM]
    # Quoted again: the path may hold anything a client sent (a newline would break the header).
    path = quote(request.script_root + request.path, safe="/:@!$&'()*+,;=-._~")
    target = path + (f"?{urlencode(rest)}" if rest else "")
    response = redirect(target, code=303)
    if token_is_valid(token):
        response.set_cookie(TOKEN_COOKIE, token, max_age=7 * 86400, httponly=True,
                            samesite="Strict", secure=request.is_secure,
                            path=request.script_root or "/")
    else:
        log.warning("invalid write token presented in a URL from %s", request.remote_addr)
    return response


def init_app(app: Flask) -> None:
    """Adopt URL tokens before any view runs; let templates ask for write access and CSRF."""
    app.before_request(adopt_token_from_url)
    app.context_processor(lambda: {"can_write": can_write, "csrf_token": csrf_token})
