"""Alerts by level and trackio.Markdown reports rendered safely, for the Alerts & Reports page.

Markdown goes through markdown-it-py's CommonMark parser with raw HTML off (it comes out as
text), images off (a report cannot make the browser fetch anything) and links kept only for
http(s), mailto and relative targets; any other link stays visible as its literal text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markupsafe import Markup

from .dashboard import fingerprint as hash_parts
from .live import Alert, ProjectState, RunInfo
from .rich import load_values, refs_of

KIND = "trackio.markdown"
LEVELS = ("error", "warn", "info")  # trackio's AlertLevel values, most severe first
MAX_LEVEL_CHARS = 64
MAX_ALERTS = 500  # newest alerts shown; the page says how many more there are
MAX_REPORTS = 100  # newest reports rendered
MAX_MARKDOWN_CHARS = 200_000  # longer reports are cut (and say so)
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")


def link_allowed(url: str) -> bool:
    """Keep http(s), mailto and relative links; refuse javascript:, data: and the rest."""
    found = SCHEME.match(url)
    return found is None or found.group(1).lower() in SAFE_SCHEMES


def _link_open(renderer, tokens, index, options, env) -> str:
    # Reports are written by whoever logs: their links should not pass our page on.
    tokens[index].attrSet("rel", "nofollow noopener noreferrer")
    return renderer.renderToken(tokens, index, options, env)


@functools.cache
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False}).disable("image")
    parser.validateLink = link_allowed
    parser.add_render_rule("link_open", _link_open)
    return parser


def render_markdown(text: str) -> Markup:
    """Markdown as HTML that is safe to place in a page (see the module docstring)."""
    return Markup(_parser().render(text))


@dataclass(frozen=True)
class Report:
    """One logged trackio.Markdown, rendered."""

    row_id: int
    key: str
    step: float
    time: float
    html: Markup
    truncated: bool


@dataclass(frozen=True)
class RunReports:
    run: str
    name: str
    reports: tuple[Report, ...]  # newest first


def level_choices(state: ProjectState) -> tuple[str, ...]:
    """trackio's levels, plus any other level another writer stored."""
    seen = {alert.level for alert in state.alerts}
    return LEVELS + tuple(sorted(seen - set(LEVELS)))


def parse_levels(values: Sequence[str], choices: Sequence[str]) -> tuple[str, ...]:
    """The levels asked for (`level=error,warn` or repeated); empty means every level.

    Raises ValueError naming the first level that is not a choice."""
    wanted = [part.strip() for value in values for part in value.split(",") if part.strip()]
    for level in wanted:
        if len(level) > MAX_LEVEL_CHARS or level not in choices:
            raise ValueError(f"level must be one of: {', '.join(choices)}")
    return tuple(level for level in choices if level in wanted)


def filtered_alerts(state: ProjectState, levels: Sequence[str]) -> tuple[list[Alert], int]:
    """The newest MAX_ALERTS alerts of these levels (all when empty), newest first, and how
    many match in all."""
    chosen = set(levels)
    matching = [a for a in state.alerts if not chosen or a.level in chosen]
    return matching[::-1][:MAX_ALERTS], len(matching)


def run_reports(state: ProjectState) -> tuple[list[RunReports], int]:
    """The newest MAX_REPORTS reports grouped by run (the run with the newest report first),
    and how many were logged in all."""
    refs = refs_of(state, {KIND})
    newest = refs[::-1][:MAX_REPORTS]
    grouped: dict[str, list[Report]] = {}
    for ref, value in load_values(state.path, state.schema, newest):
        text = value.get("_value") if isinstance(value, dict) else None
        if not isinstance(text, str):
            continue
        cut = len(text) > MAX_MARKDOWN_CHARS
        grouped.setdefault(ref.run, []).append(Report(
            ref.row_id, ref.key, ref.step, ref.time,
            render_markdown(text[:MAX_MARKDOWN_CHARS] if cut else text), cut))
    runs: dict[str, RunInfo] = state.runs
    return [RunReports(run, runs[run].name if run in runs else run, tuple(reports))
            for run, reports in grouped.items()], len(refs)


def content_fingerprint(state: ProjectState) -> str:
    """Changes when anything the page shows changes: alerts, reports, run names (once per
    version: every viewer's poll asks for it)."""
    return state.derived("reports-fingerprint", _content_fingerprint)


def _content_fingerprint(state: ProjectState) -> str:
    markdown = refs_of(state, {KIND})
    return hash_parts(len(state.alerts), state.alert_cursor, len(markdown),
                      markdown[-1].row_id if markdown else 0,
                      sorted((run.key, run.name) for run in state.runs.values()))
