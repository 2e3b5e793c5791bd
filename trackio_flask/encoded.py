"""Bodies compressed once per encoding and cached, so the 1,000th viewer costs a lookup.

Pages and poll fragments are shared by every viewer with the same view at the same tick; they
are compressed once per encoding (brotli, gzip or none, as the client accepts) and served as
those bytes. flask-compress leaves responses that already carry Content-Encoding alone.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

import brotli
from flask import Response, g, request

from .caching import cached
from .shared_cache import etag_of, share

# Quality 5 compresses megabytes of chart data in a fraction of a second and only ~3% larger
# than quality 9, which took seconds per page (a page rebuild blocks nobody, but costs CPU).
BROTLI_QUALITY = 5
GZIP_LEVEL = 6
# A zoom's answer is asked for once per gesture and window, so compressing it is most of its
# cost: on 1.8 MB of zoomed series quality 1 takes 17 ms and gives 14% more bytes than
# quality 5, which takes 80 ms (gzip level 1: 21 ms, 30% more).
FAST_BROTLI_QUALITY = 1
FAST_GZIP_LEVEL = 1
MIN_SIZE = 512


def accepted_encoding(header: str | None) -> str:
    """The best encoding a client accepts: `br`, `gzip` or `identity` (q=0 means refused)."""
    offered: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        offered[name.strip().lower()] = quality
    for encoding in ("br", "gzip"):
        if offered.get(encoding, offered.get("*", 0.0)) > 0:
            return encoding
    return "identity"


def compress(body: bytes, encoding: str, fast: bool = False) -> bytes:
    """`body` in `encoding` (`br`, `gzip`, or as it is for `identity`); `fast` trades ~15%
    more bytes for a quarter of the time."""
    if encoding == "br":
        return brotli.compress(body, quality=FAST_BROTLI_QUALITY if fast else BROTLI_QUALITY)
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=FAST_GZIP_LEVEL if fast else GZIP_LEVEL,
                             mtime=0)
    return body


def cached_response(parts: tuple, render: Callable[[], str | bytes], mimetype: str = "text/html",
                    family: tuple | None = None, fast: bool = False) -> Response:
    """Serve `render()`'s body for `parts` from cache, compressed once per encoding.

    `family` names the bodies `parts` replaces (a page's earlier snapshots): while one request
    builds the new body, others get the family's latest instead of waiting. `fast`: compress
    quickly, for bodies rarely asked for twice (zooms).
    """
    wanted = accepted_encoding(request.headers.get("Accept-Encoding"))
    notices = g.get("notices")
    if notices:
        # A page that fell back from bad settings says so: its own entry (notices are fixed
        # texts, so a client cannot mint keys with them).
        parts, family = (*parts, notices), None if family is None else (*family, notices)

    def encode() -> tuple[str, bytes, str]:
        rendered = render()
        raw = rendered.encode() if isinstance(rendered, str) else rendered
        encoding = "identity" if len(raw) < MIN_SIZE or wanted == "identity" else wanted
        body = compress(raw, encoding, fast)
        # The ETag is computed once here, not per response: the 1,000th viewer costs a lookup.
        return encoding, body, etag_of(body, encoding)

    encoding, body, etag = cached(("body-e", wanted, *parts), encode, lambda value: len(value[1]),
                                  stale=None if family is None else ("body-e", wanted, *family))
    response = Response(body, mimetype=mimetype)
    if encoding != "identity":
        response.headers["Content-Encoding"] = encoding
    return share(response, etag=etag)
