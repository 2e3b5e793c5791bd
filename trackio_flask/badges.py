"""Shields-style SVG badges of one run's metric (latest, min, max or best value). No Flask.

Two flat boxes, label and value, sized from a per-character width table of 11 px Verdana (as
shields.io measures text), with the text in both a shadow and a face layer. Every text is
XML-escaped and cut to MAX_TEXT characters; colours are #rgb/#rrggbb or a fixed name only.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

from .series import metric_summary

STATS = ("latest", "min", "max", "best")
MAX_TEXT = 60
COLOURS = {"blue": "#007ec6", "green": "#4c1", "orange": "#fe7d37", "red": "#e05d44",
           "grey": "#555", "purple": "#9467bd"}
HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
# Lower is better for metrics named like these; higher for everything else.
LOWER_IS_BETTER = re.compile(r"loss|err|perplex|ppl|wer|cer|mse|mae|rmse|nll|latency|time",
                             re.IGNORECASE)
NARROW, WIDE = set("fijlrt.,:;!|'()[] "), set("mwMW@%")


def text_width(text: str) -> int:
    """Approximate width in px of `text` in 11 px Verdana (narrow, wide and average letters)."""
    width = 0.0
    for char in text:
        width += 3.6 if char in NARROW else 10.0 if char in WIDE else 7.8 if char.isupper() \
            else 7.0
    return int(width + 0.5)


def best_stat(metric: str) -> str:
    """`min` for losses and errors (by name), else `max`."""
    return "min" if LOWER_IS_BETTER.search(metric) else "max"


def summary(values, metric: str, stat: str) -> float | None:
    """The badge's number: a run's latest finite value, or the min, max or best of them."""
    if stat == "best":
        stat = best_stat(metric)
    return metric_summary(values, "last" if stat == "latest" else stat)


def format_value(value: float | None) -> str:
    """Four significant digits (`0.01234`, `1.235e+06`); `n/a` when there is none."""
    return "n/a" if value is None else f"{value:.4g}"


def colour(name: str | None) -> str:
    """A named or hex colour; ValueError for anything else (never pasted into the SVG raw)."""
    if not name:
        return COLOURS["blue"]
    if name in COLOURS:
        return COLOURS[name]
    match = HEX.match(name)
    if not match:
        raise ValueError("color must be a name (" + ", ".join(COLOURS) + ") or a hex colour")
    return "#" + match.group(1)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def badge_svg(label: str, value: str, fill: str) -> str:
    """The badge: `label` on grey, `value` on `fill` (a checked colour)."""
    label, value = _cut(label), _cut(value)
    left, right = text_width(label) + 10, text_width(value) + 10
    total = left + right
    title = escape(f"{label}: {value}")
    parts = []
    for x, text in ((left / 2, label), (left + right / 2, value)):
        safe = escape(text)
        parts.append(f'<text x="{x:.1f}" y="15" fill="#010101" fill-opacity=".3">{safe}</text>'
                     f'<text x="{x:.1f}" y="14">{safe}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label={quoteattr(f"{label}: {value}")}><title>{title}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{fill}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        f'font-size="11">{"".join(parts)}</g></svg>')
