"""Alerts & Reports: trackio.alert rows and trackio.Markdown reports."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import limiter, page_limit

bp = Blueprint("reports", __name__)
limiter.limit(page_limit)(bp)
