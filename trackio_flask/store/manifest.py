"""The store's manifest: which segment files hold which rows, up to which row id (the
watermark), for which database file. Replaced atomically, so a reader sees one or the other."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

FORMAT = 1


@dataclass
class Part:
    """One run's rows of one segment: its file, row count, metric names and finite counts."""

    file: str
    rows: int
    names: list[str]
    finite: dict[str, int]


@dataclass
class Segment:
    """Rows with metric id in (metric_from, metric_to] and system id in (system_from, system_to]."""

    dir: str
    metric_from: int
    metric_to: int
    system_from: int
    system_to: int
    metrics: dict[str, Part] = field(default_factory=dict)  # by run key
    system: dict[str, Part] = field(default_factory=dict)
    rich_rows: int = 0

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.metrics.values()) + sum(
            p.rows for p in self.system.values())


@dataclass
class Manifest:
    generation: str
    db_dev: int
    db_ino: int
    schema: list[str | None]
    metric_cursor: int
    system_cursor: int
    metric_rows: int
    system_rows: int
    metric_check: str  # storage.row_signature of the row at metric_cursor
    system_check: str
    runs: dict[str, dict[str, Any]]
    segments: list[Segment]
    format: int = FORMAT


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # "nan", "inf", "-inf": JSON has no such numbers
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    return value


def _none_to_nan(value: Any) -> Any:
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: _none_to_nan(v) for k, v in value.items()}
    return value


def save(folder: Path, manifest: Manifest) -> None:
    """Write to a temporary file, flush it to disk, then rename over the old manifest."""
    data = asdict(manifest)
    data["runs"] = {key: _nan_to_none(run) for key, run in manifest.runs.items()}
    temporary = folder / f"manifest.{os.getpid()}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(orjson.dumps(data))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, folder / "manifest.json")


def load(folder: Path) -> Manifest | None:
    """The manifest, or None when there is none or it cannot be read as this format."""
    try:
        data = orjson.loads((folder / "manifest.json").read_bytes())
        if data.get("format") != FORMAT:
            return None
        segments = []
        for raw in data.pop("segments"):
            metrics = {k: Part(**v) for k, v in raw.pop("metrics").items()}
            system = {k: Part(**v) for k, v in raw.pop("system").items()}
            segments.append(Segment(metrics=metrics, system=system, **raw))
        data["runs"] = {key: _none_to_nan(run) for key, run in data["runs"].items()}
        return Manifest(segments=segments, **data)
    except (OSError, orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
        return None
