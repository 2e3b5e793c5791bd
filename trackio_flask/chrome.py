"""The display settings every page's links carry on (theme, hidden navbar), apart from the
metrics page's view settings."""

from __future__ import annotations

from flask import request

from .dashboard import View
from .params import parse_view


def chrome_args(view: View) -> dict[str, str]:
    """`__theme` and `navbar` as query arguments, defaults left out."""
    return {name: value for name, value in (("__theme", view.theme), ("navbar", view.navbar))
            if value and value != "system"}


def request_chrome() -> dict[str, str]:
    """This request's `chrome_args`."""
    return chrome_args(parse_view(request.args))
