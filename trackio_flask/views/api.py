"""Trackio's HTTP API v1: `GET /version` and `POST /api/<name>` read endpoints."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from .._version import __version__

bp = Blueprint("api", __name__)


@bp.get("/version")
def version() -> Response:
    """Let Trackio clients detect the plain-HTTP API."""
    return jsonify(version=__version__, api_version=1, api_transport="http", mcp_enabled=False,
                   mcp_path=None)
