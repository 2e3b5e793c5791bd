"""Choose the refresh interval from the request host and how long the data has been idle."""

from __future__ import annotations

import time

from flask import current_app, request


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
