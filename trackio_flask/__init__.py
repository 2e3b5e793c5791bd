"""trackio_flask: a fast server-rendered dashboard for Trackio projects, and a small logging SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .sdk import Run, finish, init, log, log_system

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["Run", "create_app", "finish", "init", "log", "log_system"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the dashboard app (imported lazily so training scripts never load Flask)."""
    from .app import create_app as build

    return build(config)
