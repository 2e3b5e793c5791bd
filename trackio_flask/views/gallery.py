"""Media & Tables: images, video, audio, HTML and tables logged with trackio's media types."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import limiter, page_limit

bp = Blueprint("gallery", __name__)
limiter.limit(page_limit)(bp)
