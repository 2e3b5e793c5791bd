"""The display settings every page's links carry on (theme, hidden navbar), apart from the
metrics page's view settings."""

from __future__ import annotations

from .dashboard import View


def chrome_args(view: View) -> dict[str, str]:
    """`__theme` and `navbar` as query arguments, defaults left out."""
    return {name: value for name, value in (("__theme", view.theme), ("navbar", view.navbar))
            if value and value != "system"}
