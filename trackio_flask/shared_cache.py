"""HTTP caching headers that let nginx or a CDN answer a tick's identical read-only requests.

A view marks its response shareable (`share`); after every request `finish` decides: a request
that carries anything personal (any cookie, an Authorization header, the write token in a
header or the URL) or a response that sets a cookie gets `private, no-store` instead, so a
writer's page (rename forms, CSRF tokens) never lands in a shared cache. Shareable answers
live for one tick (TICK_S, at least the one second HTTP can say) in shared caches and are
revalidated by browsers every time (max-age=0), with an ETag of their bytes (or of the
project version and view, for images) so a revalidation costs a 304.
"""

from __future__ import annotations

import hashlib
import math

from flask import Flask, Response, current_app, g, request

from . import auth

PRIVATE = "private, no-store"
# Every shareable answer varies by these and nothing else (pages vary by host and path only).
VARY = "Accept-Encoding, Cookie"
FOREVER_S = 31_536_000  # a year: what RFC 9111 and CDNs take as "never expires"
_TOKEN_ENVIRON = "HTTP_" + auth.TOKEN_HEADER.upper().replace("-", "_")


def shared_max_age() -> int:
    """Seconds a shared cache may keep an answer: one tick, never less than one second."""
    return max(1, math.ceil(float(current_app.config["TICK_S"])))


def personal() -> bool:
    """Whether this request carries something that may make its answer one person's."""
    environ = request.environ  # read directly: this runs on every poll
    return bool(environ.get("HTTP_COOKIE") or environ.get("HTTP_AUTHORIZATION")
                or environ.get(_TOKEN_ENVIRON) or auth.TOKEN_PARAM in request.args)


def share(response: Response, etag: str | None = None, max_age: int | None = None) -> Response:
    """Mark a read-only answer as storable by shared caches (see `finish` for the exceptions).

    `etag` names the answer without hashing it again (images: version + view; cached bodies:
    computed once with the body); by default the ETag is a hash of the final body.
    """
    seconds = shared_max_age() if max_age is None else max_age
    response.headers["Cache-Control"] = f"public, max-age=0, s-maxage={seconds}"
    response.headers["Vary"] = VARY
    if etag is not None:
        response.set_etag(etag)
    g.shared = True
    return response


def share_forever(response: Response) -> Response:
    """Mark an answer that can never change at its URL (a content-addressed history chunk) as
    storable by any cache for a year; a personal request still makes it private, and its
    strong ETag is of the sent bytes, per encoding (`finish`)."""
    response.headers["Cache-Control"] = f"public, max-age={FOREVER_S}, immutable"
    response.headers["Vary"] = VARY
    g.shared = True
    return response


def etag_of(body: bytes, encoding: str) -> str:
    """A strong ETag of sent bytes: each encoding is its own representation."""
    return hashlib.blake2b(body, digest_size=12, person=encoding[:16].encode()).hexdigest()


def not_modified(etag: str) -> bool:
    """Whether the client already holds the answer named `etag` (If-None-Match)."""
    if not request.environ.get("HTTP_IF_NONE_MATCH"):
        return False
    return etag in request.if_none_match or "*" in request.if_none_match


def finish(response: Response) -> Response:
    """Make a shareable answer private when the request or response is personal; give it an
    ETag of its bytes and answer a matching If-None-Match with 304."""
    if not g.get("shared") or "public" not in response.headers.get("Cache-Control", ""):
        return response
    if personal() or "Set-Cookie" in response.headers or response.status_code not in (200, 204, 304):
        response.headers["Cache-Control"] = PRIVATE
        return response
    if response.status_code == 200 and not response.is_streamed and "ETag" not in response.headers:
        response.set_etag(etag_of(response.get_data(),
                                  response.headers.get("Content-Encoding", "identity")))
    if response.status_code == 200 and request.environ.get("HTTP_IF_NONE_MATCH"):
        etag, _ = response.get_etag()
        if etag and not_modified(etag):
            response.status_code = 304
            response.set_data(b"")
            for header in ("Content-Length", "Content-Encoding", "Content-Type"):
                response.headers.pop(header, None)
    return response


def init_app(app: Flask) -> None:
    """Run `finish` after every view (before the security headers, which never vary)."""
    app.after_request(finish)
