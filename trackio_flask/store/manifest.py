"""The store's manifest: which file holds each run's columns and how many of its rows count, up
to which row id (the watermark), for which database file. Replaced atomically (write, fsync,
rename), so a reader sees the old one or the new one, never a mix."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

FORMAT = 3  # 3: run files have a pyramid file beside them


@dataclass
class RunFile:
    """One run's columns: its file, rows that are the run's (`length`), rows the file holds
    (`capacity`, the rest is room to grow), metric names in file order, finite counts."""

    file: str
    length: int
    capacity: int
    names: list[str]
    finite: dict[str, int]
    pyramid: str = ""  # its min/max pyramid's file, valid for the rows below `length`


@dataclass
class RichFile:
    """Where rich values were logged, for the rows of one write."""

    file: str
    rows: int


@dataclass
class Manifest:
    generation: str  # a new one per full build: workers holding another one stop writing
    db_dev: int
    db_ino: int
    schema: list[str | None]
    metric_cursor: int  # the watermark: metrics rows with id <= this are in the files
    system_cursor: int
    metric_rows: int
    system_rows: int
    metric_check: str  # storage.row_signature of the row at metric_cursor
    system_check: str
    runs: dict[str, dict[str, Any]]
    metrics: dict[str, RunFile] = field(default_factory=dict)  # by run key
    system: dict[str, RunFile] = field(default_factory=dict)
    rich: list[RichFile] = field(default_factory=list)
    format: int = FORMAT
    # A build's commit on its way (the last metric row id it aims at), so pages can say how
    # far it got; 0 when complete. Such a manifest validates like any other: a worker that
    # takes over after the builder died catches up from its watermark.
    building: int = 0

    def files(self) -> set[str]:
        runs = (*self.metrics.values(), *self.system.values())
        return {f.file for f in (*runs, *self.rich)} | {f.pyramid for f in runs if f.pyramid}


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
        data["metrics"] = {k: RunFile(**v) for k, v in data["metrics"].items()}
        data["system"] = {k: RunFile(**v) for k, v in data["system"].items()}
        data["rich"] = [RichFile(**v) for v in data["rich"]]
        data["runs"] = {key: _none_to_nan(run) for key, run in data["runs"].items()}
        return Manifest(**data)
    except (OSError, orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
        return None
