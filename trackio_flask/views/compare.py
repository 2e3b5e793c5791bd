"""Run comparer: selected runs side by side, config and summary metrics as rows."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import limiter, page_limit

bp = Blueprint("compare", __name__)
limiter.limit(page_limit)(bp)
