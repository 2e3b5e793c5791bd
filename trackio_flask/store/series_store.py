"""Build, restore, extend and compact one project's columnar store (see the package docstring).

Consistency: segment files are written first, then the manifest is renamed over the old one;
a process killed in between leaves files the manifest does not name (deleted by the next
writer) and the old manifest, which still validates. Writers hold an fcntl lock on the
project's folder, so N workers build a store once; readers need no lock (files never change
once named by a manifest, and a map outlives the file's deletion).
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import storage
from ..series import Columns
from . import arrow_files, location
from .manifest import Manifest, Part, Segment, load, save

log = logging.getLogger(__name__)


@dataclass
class Restored:
    """What a store holds: the series up to its watermark, and the runs as of then."""

    generation: str
    metric_cursor: int
    system_cursor: int
    metric_rows: int
    system_rows: int
    runs: dict[str, dict[str, Any]]
    metrics: dict[str, Columns]
    system: dict[str, Columns]
    rich: list[tuple]


class SeriesStore:
    """Per-project Arrow stores under one root folder, bounded by `cap_bytes` on disk."""

    def __init__(self, root: Path, cap_bytes: int, append_rows: int = 50_000,
                 append_age_s: float = 30.0, max_segments: int = 8) -> None:
        self.root = Path(root)
        self.cap_bytes = cap_bytes
        self.append_rows = append_rows  # new rows that make an append due at once
        self.append_age_s = append_age_s  # …or this long since the last one
        self.max_segments = max_segments
        self.builds = self.appends = self.compactions = self.restores = 0

    def folder(self, project: str, db: Path) -> Path:
        return location.project_dir(self.root, project, db)

    @contextmanager
    def lock(self, project: str, db: Path, blocking: bool = True) -> Iterator[bool]:
        """Hold the project's writer lock; yields False when it is busy (non-blocking) or
        the folder cannot be used, and the caller then goes without the store."""
        folder = self.folder(project, db)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / "lock", "a+b")  # noqa: SIM115 (held across the yield)
        except OSError as exc:
            log.warning("series store: cannot use %s (%s); serving from memory", folder, exc)
            yield False
            return
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            handle.close()  # closing releases the flock

    def restore(self, project: str, db: Path, schema: storage.Schema,
                conn: sqlite3.Connection) -> Restored | None:
        """The stored series if they still describe this database, else None (rebuild)."""
        folder = self.folder(project, db)
        manifest = load(folder)
        if manifest is None:
            return None
        stat = os.stat(db)
        why = None
        if (manifest.db_dev, manifest.db_ino) != (stat.st_dev, stat.st_ino):
            why = "the database file was replaced"
        elif manifest.schema != list(_schema_list(schema)):
            why = "the schema changed"
        elif storage.row_signature(conn, schema, "metrics", manifest.metric_cursor) \
                != manifest.metric_check or storage.row_signature(
                conn, schema, "system_metrics", manifest.system_cursor) != manifest.system_check:
            why = "the rows at its watermark were rewritten or deleted"
        if why:
            log.info("series store of %r is stale (%s); rebuilding", project, why)
            return None
        try:
            restored = self._read(folder, manifest)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            log.warning("series store of %r is unreadable (%s); rebuilding", project, exc)
            return None
        self.restores += 1
        return restored

    def _read(self, folder: Path, manifest: Manifest) -> Restored:
        metric_parts: dict[str, list[tuple[Part, list[np.ndarray]]]] = {}
        system_parts: dict[str, list[tuple[Part, list[np.ndarray]]]] = {}
        rich: list[tuple] = []
        for segment in manifest.segments:
            here = folder / segment.dir
            for parts, into in ((segment.metrics, metric_parts), (segment.system, system_parts)):
                for key, part in parts.items():
                    arrays = arrow_files.read_columns(here / part.file, len(part.names),
                                                      part.rows)
                    into.setdefault(key, []).append((part, arrays))
            if segment.rich_rows:
                rich += arrow_files.read_rich(here / "rich.arrow", segment.rich_rows)
        return Restored(
            manifest.generation, manifest.metric_cursor, manifest.system_cursor,
            manifest.metric_rows, manifest.system_rows, manifest.runs,
            {key: _columns(parts) for key, parts in metric_parts.items()},
            {key: _columns(parts) for key, parts in system_parts.items()}, rich)

    def due(self, state: Any) -> bool:
        """Whether the rows read since the last write are worth a new segment now."""
        new = state.metric_rows + state.system_rows - state.stored_rows
        return new > 0 and (new >= self.append_rows
                            or time.monotonic() - state.stored_at >= self.append_age_s)

    def write(self, project: str, db: Path, state: Any, conn: sqlite3.Connection,
              full: bool) -> bool:
        """Write `state`'s rows past the stored watermark (all of them when `full`) as a
        segment, compacting when segments pile up. The caller holds the lock. False when the
        store was rebuilt by another process meanwhile (its rows are theirs to add)."""
        folder = self.folder(project, db)
        manifest = None if full else load(folder)
        if manifest is not None and manifest.generation != state.store_generation:
            return False
        if manifest is None and not full:
            full = True  # the store was deleted under us: write it whole
        if manifest is not None and (manifest.metric_cursor >= state.metric_cursor
                                     and manifest.system_cursor >= state.system_cursor):
            _mark_stored(state, manifest.generation)
            return True
        if manifest is not None and (manifest.metric_cursor > state.metric_cursor
                                     or manifest.system_cursor > state.system_cursor):
            return False  # another worker is further on one table; it appends next time
        if full:
            segments = [_write_segment(folder, state, 0, 0)]
            generation = uuid.uuid4().hex
            self.builds += 1
        else:
            segments = [*manifest.segments, _write_segment(
                folder, state, manifest.metric_cursor, manifest.system_cursor)]
            generation = manifest.generation
            self.appends += 1
            if len(segments) > self.max_segments:
                segments = self._compact(folder, state, segments)
        stat = os.stat(db)
        save(folder, Manifest(
            generation=generation, db_dev=stat.st_dev, db_ino=stat.st_ino,
            schema=list(_schema_list(state.schema)), metric_cursor=state.metric_cursor,
            system_cursor=state.system_cursor, metric_rows=state.metric_rows,
            system_rows=state.system_rows,
            metric_check=storage.row_signature(conn, state.schema, "metrics",
                                               state.metric_cursor),
            system_check=storage.row_signature(conn, state.schema, "system_metrics",
                                               state.system_cursor),
            runs={key: asdict(run) for key, run in state.runs.items()}, segments=segments))
        _mark_stored(state, generation)
        _remove_unnamed(folder, {segment.dir for segment in segments})
        if not location.enforce_cap(self.root, self.cap_bytes, keep=folder):
            state.store_generation = ""
        return True

    def _compact(self, folder: Path, state: Any, segments: list[Segment]) -> list[Segment]:
        """Merge the newer segments into one, or everything when they outgrow half the base:
        each row is rewritten O(log rows) times, not once per append."""
        self.compactions += 1
        base, newer = segments[0], segments[1:]
        if sum(s.rows for s in newer) * 2 >= base.rows:
            return [_write_segment(folder, state, 0, 0)]
        return [base, _write_segment(folder, state, base.metric_to, base.system_to)]


def _schema_list(schema: storage.Schema) -> tuple[str | None, ...]:
    return (schema.metrics_key, schema.system_key, schema.configs_key, schema.alerts_key)


def _mark_stored(state: Any, generation: str) -> None:
    state.store_generation = generation
    state.stored_rows = state.metric_rows + state.system_rows
    state.stored_at = time.monotonic()


def _write_segment(folder: Path, state: Any, metric_from: int, system_from: int) -> Segment:
    """The rows with id past the two cursors, one Arrow file per run and table."""
    name = f"seg-{uuid.uuid4().hex[:12]}"
    temporary = folder / f"{name}.tmp"
    temporary.mkdir()
    segment = Segment(name, metric_from, state.metric_cursor, system_from, state.system_cursor)
    for table, since, parts, prefix in ((state.metrics, metric_from, segment.metrics, "m"),
                                        (state.system, system_from, segment.system, "s")):
        for index, (key, columns) in enumerate(table.items()):
            start = columns.index_after(since)
            if start >= columns.length:
                continue
            names = list(columns.metrics)
            values = [columns.column(n)[start:] for n in names]
            # The running counts are exact for a whole run; a tail is counted.
            finite = dict(columns.finite) if start == 0 else {
                n: int(np.isfinite(v).sum()) for n, v in zip(names, values, strict=True)}
            file = f"{prefix}{index}.arrow"
            arrow_files.write_columns(temporary / file, columns.ids[start:columns.length],
                                      columns.steps[start:columns.length],
                                      columns.times[start:columns.length], values)
            parts[key] = Part(file, columns.length - start, names, finite)
    rich = [tuple(ref) for ref in state.rich if ref[0] > metric_from]
    if rich:
        arrow_files.write_rich(temporary / "rich.arrow", rich)
    segment.rich_rows = len(rich)
    os.rename(temporary, folder / name)
    return segment


def _remove_unnamed(folder: Path, named: set[str]) -> None:
    """Delete segments no manifest names (replaced by a compaction, or left by a killed writer)
    and manifests a killed writer never renamed into place."""
    for child in folder.iterdir():
        if child.name.startswith("seg-") and child.name not in named:
            shutil.rmtree(child, ignore_errors=True)
        elif child.name.startswith("manifest.") and child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)


def _columns(parts: list[tuple[Part, list[np.ndarray]]]) -> Columns:
    """One run's columns: the mapped arrays themselves when one segment holds the run,
    else one copy joining its segments."""
    if len(parts) == 1:
        part, arrays = parts[0]
        return Columns.from_arrays(arrays[0], arrays[1], arrays[2],
                                   dict(zip(part.names, arrays[3:], strict=True)),
                                   part.finite, shared=True)
    names: list[str] = []
    for part, _ in parts:
        names += [n for n in part.names if n not in names]
    joined: dict[str, list[np.ndarray]] = {n: [] for n in names}
    finite: dict[str, int] = {}
    for part, arrays in parts:
        have = dict(zip(part.names, arrays[3:], strict=True))
        for n in names:
            joined[n].append(have[n] if n in have else np.full(part.rows, math.nan))
        for n, count in part.finite.items():
            finite[n] = finite.get(n, 0) + count
    base = [np.concatenate([arrays[i] for _, arrays in parts]) for i in range(3)]
    return Columns.from_arrays(*base, {n: np.concatenate(v) for n, v in joined.items()},
                               finite, shared=False)


def open_store(data_dir: Path, root: Path | None, cap_mb: int, **options: Any) -> SeriesStore | None:
    """The configured store, or None when it is switched off or no folder can be written."""
    if cap_mb <= 0:
        return None
    if root is None:
        root = location.default_root(data_dir)
    elif not location.writable(Path(root)):
        root = None
    if root is None:
        log.warning("series store: no writable folder (set TRACKIO_FLASK_STORE_DIR); every "
                    "process decodes the databases itself")
        return None
    return SeriesStore(Path(root), cap_mb * 2**20, **options)
