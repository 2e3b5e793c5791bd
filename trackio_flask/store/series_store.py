"""Build, restore and extend one project's columnar store (see the package docstring).

One Arrow file per run and table, with room to grow: a live run's new rows are written into
the room through the shared mapping every worker holds, and an append only commits the new
lengths and the watermark in the manifest (O(new rows), whatever the history). A run that
outgrows its room or logs a new metric name gets a new file (its room grows by a quarter, so
each row is copied O(1) times on average); the other runs' files are untouched.

Consistency: files are written first, then the manifest is renamed over the old one; rows past
a manifest's lengths are never read, so a process killed at any point leaves the old manifest,
which still validates, and files it does not name (deleted by the next writer). Writers hold
an fcntl lock on the project's folder, so N workers build a store once; readers need no lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import resource
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
from . import arrow_files, location, pyramid
from .manifest import Manifest, RichFile, RunFile, load, save

log = logging.getLogger(__name__)
ROOM_MIN = 256  # rows of room a run file gets at least (a quarter of its length at most)
MAX_RICH_FILES = 8  # rich-reference files before they are joined into one
BUILDING = "building"  # a running build's marker: the last metric row id it aims at


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
                 append_age_s: float = 30.0) -> None:
        self.root = Path(root)
        self.cap_bytes = cap_bytes
        self.append_rows = append_rows  # new rows that make an append due at once
        self.append_age_s = append_age_s  # …or this long since the last one
        self.builds = self.appends = self.rewrites = self.restores = 0
        _allow_open_files()

    def folder(self, project: str, db: Path) -> Path:
        return location.project_dir(self.root, project, db)

    @contextmanager
    def lock(self, project: str, db: Path, blocking: bool = True) -> Iterator[bool | None]:
        """Hold the project's writer lock; yields False when it is busy (non-blocking), None
        when the folder cannot be used (both falsy: the caller goes without the store)."""
        folder = self.folder(project, db)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / "lock", "a+b")  # noqa: SIM115 (held across the yield)
        except OSError as exc:
            log.warning("series store: cannot use %s (%s); serving from memory", folder, exc)
            yield None
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
            restored = Restored(
                manifest.generation, manifest.metric_cursor, manifest.system_cursor,
                manifest.metric_rows, manifest.system_rows, manifest.runs,
                {key: _mapped(folder, entry) for key, entry in manifest.metrics.items()},
                {key: _mapped(folder, entry) for key, entry in manifest.system.items()},
                [ref for entry in manifest.rich
                 for ref in arrow_files.read_rich(folder / entry.file, entry.rows)])
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            log.warning("series store of %r is unreadable (%s); rebuilding", project, exc)
            return None
        self.restores += 1
        return restored

    def due(self, state: Any) -> bool:
        """Whether the rows read since the last write are worth committing now."""
        new = state.metric_rows + state.system_rows - state.stored_rows
        return new > 0 and (new >= self.append_rows
                            or time.monotonic() - state.stored_at >= self.append_age_s)

    def building(self, project: str, db: Path) -> int:
        """The last metric row id the running build of the project aims at (what it has
        committed so far is readable without the lock, see `restore`); 0 when none says so.
        Asked only while the lock is busy: a marker a killed builder left is then stale only
        until the next writer's commit removes it."""
        folder = self.folder(project, db)
        manifest = load(folder)
        if manifest is not None and manifest.building:
            return manifest.building
        try:
            return int((folder / BUILDING).read_text())
        except (OSError, ValueError):
            return 0

    def mark_building(self, project: str, db: Path, target: int) -> None:
        """Say a build started (before its first part is committed), so other workers
        answer at once, with nothing yet, instead of waiting on the lock for the whole build."""
        folder = self.folder(project, db)
        temporary = folder / f"{BUILDING}.{os.getpid()}.tmp"
        try:
            temporary.write_text(str(max(target, 1)))
            os.replace(temporary, folder / BUILDING)
        except OSError as exc:
            log.warning("series store of %r: cannot mark the build: %s", project, exc)

    def write(self, project: str, db: Path, state: Any, conn: sqlite3.Connection,
              full: bool, building: int = 0) -> bool:
        """Commit `state`'s rows past the stored watermark (every run written anew when
        `full`); the runs written anew are mapped back into `state`, so their decoded copy
        leaves private memory. The caller holds the lock. False when another process rebuilt
        the store meanwhile, or is further on one table (its rows are theirs to commit)."""
        folder = self.folder(project, db)
        before = None if full else load(folder)
        if before is None:
            full = True  # first build, or the store was deleted under us
        elif before.generation != state.store_generation:
            return False
        elif before.metric_cursor >= state.metric_cursor \
                and before.system_cursor >= state.system_cursor:
            # Another worker committed these rows and their pyramid blocks: read them there.
            for table, entries in ((state.metrics, before.metrics), (state.system, before.system)):
                for key, columns in table.items():
                    entry = entries.get(key)
                    if entry is not None and columns.pyramid is not None \
                            and columns.source == entry.file:
                        columns.pyramid.length = min(entry.length, columns.length)
            _mark_stored(state, before.generation)
            return True
        elif before.metric_cursor > state.metric_cursor \
                or before.system_cursor > state.system_cursor:
            return False
        if full:
            self.builds += 1
        else:
            self.appends += 1
        stat = os.stat(db)
        manifest = Manifest(
            generation=uuid.uuid4().hex if full else before.generation,
            db_dev=stat.st_dev, db_ino=stat.st_ino, schema=list(_schema_list(state.schema)),
            metric_cursor=state.metric_cursor, system_cursor=state.system_cursor,
            metric_rows=state.metric_rows, system_rows=state.system_rows,
            metric_check=storage.row_signature(conn, state.schema, "metrics",
                                               state.metric_cursor),
            system_check=storage.row_signature(conn, state.schema, "system_metrics",
                                               state.system_cursor),
            runs={key: asdict(run) for key, run in state.runs.items()},
            metrics=self._run_files(folder, state.metrics, before.metrics if before else {}),
            system=self._run_files(folder, state.system, before.system if before else {}),
            rich=_rich_files(folder, state, before), building=building)
        save(folder, manifest)
        if not building:
            (folder / BUILDING).unlink(missing_ok=True)
        _mark_stored(state, manifest.generation)
        _remove_unnamed(folder, manifest.files())
        if not location.enforce_cap(self.root, self.cap_bytes, keep=folder):
            state.store_generation = ""
        return True

    def _run_files(self, folder: Path, table: dict[str, Columns],
                   before: dict[str, RunFile]) -> dict[str, RunFile]:
        out = {}
        for key, columns in table.items():
            entry = before.get(key)
            if entry is not None and columns.shared and columns.source == entry.file \
                    and not columns.private_metrics and _extend_pyramid(columns, entry):
                # Its new rows are already in the file's room: commit the length only (the
                # pyramid's blocks over the new rows were just rewritten, O(new rows)).
                out[key] = RunFile(entry.file, columns.length, entry.capacity, entry.names,
                                   dict(columns.finite), entry.pyramid)
                continue
            # A new run, one past its room, with a new metric name, or mapped from a file
            # another worker replaced: written anew, then mapped instead of the private copy.
            length, names = columns.length, list(columns.metrics)
            capacity = length + max(length // 4, ROOM_MIN)
            name = f"{uuid.uuid4().hex[:16]}.arrow"
            arrow_files.write_columns(folder / name, columns.ids[:length],
                                      columns.steps[:length], columns.times[:length],
                                      [columns.column(n) for n in names], capacity)
            # A run with no metric names yet (only rich values, say), or a short one, has no
            # pyramid.
            with_pyramid = bool(names) and capacity >= pyramid.MIN_CAPACITY
            pyramid_name = name.replace(".arrow", ".pyr.arrow") if with_pyramid else ""
            if with_pyramid:
                arrow_files.write_pyramid(folder / pyramid_name, [
                    pyramid.build(np.concatenate((columns.column(n),
                                                  np.full(capacity - length, np.nan))),
                                  capacity, length) for n in names])
            self.rewrites += 1
            out[key] = RunFile(name, length, capacity, names, dict(columns.finite),
                               pyramid_name)
            table[key] = _mapped(folder, out[key])
        return out


def _allow_open_files() -> None:
    """Raise the soft open-file limit to the hard one: every mapped run file holds a file
    descriptor, and a soft limit of 1,024 (common for services) would keep a big project's
    store from being written at all, leaving every worker to decode every row."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or (hard != resource.RLIM_INFINITY and soft >= hard):
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("series store: open-file limit stays %d (%s)", soft, exc)
        return
    log.info("series store: open-file limit raised from %d to %s", soft, hard)


def _schema_list(schema: storage.Schema) -> tuple[str | None, ...]:
    return (schema.metrics_key, schema.system_key, schema.configs_key, schema.alerts_key)


def _mark_stored(state: Any, generation: str) -> None:
    state.store_generation = generation
    state.stored_rows = state.metric_rows + state.system_rows
    state.stored_at = time.monotonic()


def _mapped(folder: Path, entry: RunFile) -> Columns:
    arrays = arrow_files.map_columns(folder / entry.file, len(entry.names), entry.capacity)
    if not 0 <= entry.length <= entry.capacity:
        raise ValueError(f"{entry.file}: length {entry.length} of {entry.capacity}")
    columns = Columns.from_arrays(arrays[0], arrays[1], arrays[2],
                                  dict(zip(entry.names, arrays[3:], strict=True)), entry.finite,
                                  entry.length, source=entry.file)
    if entry.pyramid:
        stats = arrow_files.map_pyramid(folder / entry.pyramid, len(entry.names), entry.capacity)
        columns.pyramid = pyramid.RunPyramid(entry.capacity, entry.length,
                                             dict(zip(entry.names, stats, strict=True)))
    return columns


def _extend_pyramid(columns: Columns, entry: RunFile) -> bool:
    """Rewrite the pyramid blocks over the rows past the committed length; False when this
    worker holds no pyramid of the file (then the file is written anew, with one)."""
    if not entry.names or (not entry.pyramid and entry.capacity < pyramid.MIN_CAPACITY):
        return True  # a run with no metric names, or a short one, has no pyramid to extend
    held = columns.pyramid
    if not entry.pyramid or held is None or held.capacity != entry.capacity:
        return False
    for name in entry.names:
        pyramid.update(held.series[name], columns.metrics[name], entry.capacity,
                       entry.length, columns.length)
    held.length = columns.length
    return True


def _rich_files(folder: Path, state: Any, before: Manifest | None) -> list[RichFile]:
    """The rich references: a file per write of the new ones, joined when they pile up."""
    files = list(before.rich) if before else []
    since = before.metric_cursor if before else 0
    new = [tuple(ref) for ref in state.rich if ref[0] > since]
    if len(files) + bool(new) > MAX_RICH_FILES:
        files, new = [], [tuple(ref) for ref in state.rich]
    if new:
        name = f"rich-{uuid.uuid4().hex[:16]}.arrow"
        arrow_files.write_rich(folder / name, new)
        files.append(RichFile(name, len(new)))
    return files


def _remove_unnamed(folder: Path, named: set[str]) -> None:
    """Delete files no manifest names (replaced, or left by a killed writer) and manifests a
    killed writer never renamed into place."""
    for child in folder.iterdir():
        if child.suffix == ".arrow" and child.name not in named:
            child.unlink(missing_ok=True)
        elif child.name.startswith(("manifest.", f"{BUILDING}.")) \
                and child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)


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
