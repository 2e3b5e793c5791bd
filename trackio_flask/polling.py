"""Choose the refresh interval from the request host and how long the data has been idle, and
answer polls: every page's poller sends its interval as `iv` and gets 204 or no-store HTML."""

from __future__ import annotations

import time

from flask import Response, current_app, render_template, request
from werkzeug.exceptions import BadRequest


def host_class(host: str) -> str:
    """Classify a Host header: `hf` for *.hf.space, `local` for loopback, else `remote`."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    name = name.lower().rstrip(".")
    if name.endswith(".hf.space"):
        return "hf"
    if name in ("localhost", "127.0.0.1", "[::1]", "::1") or name.startswith("127."):
        return "local"
    return "remote"


def base_interval() -> float:
    """The interval for this request's host (after proxy headers), from settings."""
    kind = host_class(request.host)
    key = {"hf": "POLL_HF_S", "local": "POLL_LOCAL_S", "remote": "POLL_REMOTE_S"}[kind]
    return float(current_app.config[key])


def interval_for(last_activity: float, now: float | None = None) -> float:
    """Double the base interval for every idle period without new data, up to the cap."""
    base = base_interval()
    now = time.time() if now is None else now
    idle_after = float(current_app.config["POLL_IDLE_AFTER_S"])
    cap = max(base, float(current_app.config["POLL_IDLE_CAP_S"]))
    idle = now - last_activity if last_activity == last_activity else 0.0
    steps = int(max(0.0, idle) // idle_after)
    return round(min(cap, base * (2 ** min(steps, 16))), 2)


def interval_arg() -> float:
    """The interval (`iv`) the polling page has now; 400 when missing or absurd."""
    try:
        value = float(request.args.get("iv", ""))
    except ValueError:
        raise BadRequest("iv must be a number") from None
    if not 0 < value < 3600:
        raise BadRequest("iv is out of range")
    return value


def html_response(body: str) -> Response:
    """A poll answer that no browser or proxy keeps (the next poll must reach the server)."""
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def next_poller(url: str, interval: float) -> Response:
    """Nothing the page shows changed, but its poller must change (new version or interval)."""
    return html_response(render_template("_partials/_poller_only.html", poll=url,
                                         interval=interval))


def no_content() -> Response:
    """204: nothing new for this page."""
    response = Response(status=204)
    # No body, so no type; this also keeps the compressor from labelling an empty body "br".
    del response.headers["Content-Type"]
    response.headers["Cache-Control"] = "no-store"
    return response


def page_is_current(version: str, interval: float) -> bool:
    """True when the polling page already shows `version` at `interval`: answer it 204."""
    page_interval = interval_arg()  # validated first: a bad `iv` is a 400 whatever the version
    return request.args.get("v") == version and interval == page_interval
