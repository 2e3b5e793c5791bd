"""Histograms: each run's latest distribution and the distribution over steps."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import limiter, page_limit

bp = Blueprint("histograms", __name__)
limiter.limit(page_limit)(bp)
