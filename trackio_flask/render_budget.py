"""What drawing views share: the per-client draw budget, and the 503 when no draw can run now."""

from __future__ import annotations

from flask import Response, current_app, g


class DrawUnavailable(Exception):
    """No renderer (or exporter) answered in time; the client may retry shortly."""


def draw_limit() -> str:
    """Flask-Limiter's budget of draws per client (RATELIMIT_IMAGES)."""
    return current_app.config["RATELIMIT_IMAGES"]


def mark_drawn() -> None:
    """This request drew something: it spends the client's draw budget."""
    g.drew_image = True


def drew(response: Response) -> bool:
    """Only a draw spends the budget (not a cached image, not a 304): Limiter's deduct_when."""
    return bool(g.get("drew_image"))


def unavailable(exc: DrawUnavailable) -> Response:
    """503 with Retry-After, never stored."""
    response = Response(f"This could not be drawn now ({exc}); try again shortly.",
                        status=503, mimetype="text/plain")
    response.headers["Retry-After"] = "5"
    response.headers["Cache-Control"] = "no-store"
    return response
