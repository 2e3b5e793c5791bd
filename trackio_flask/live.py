"""Keep each project's decoded series in memory and extend them by the rows added since last time."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np

from . import memory_release, storage
from .group_ema import GroupEma
from .locks import KeyedLocks
from .series import (
    NUMBER_TYPES,
    Columns,
    decode_payload,
    decode_payloads,
    offsets_by,
    only_numbers,
    scalar_metrics,
)
from .store import Restored, SeriesStore
from .timestamps import parse as parse_timestamp
from .timestamps import parse_many

log = logging.getLogger(__name__)
# How long a page waits for a store build running elsewhere before it answers with the part
# that build committed (and says so): small projects build well within it.
PARTIAL_AFTER_S = 1.0
T = TypeVar("T")
CHUNK = 20_000
RECOUNT_S = 30.0
PROGRESS_S = 10.0  # a cold decode logs how far it got this often
MAX_CONFIG_DEPTH = 64


def _number(value: Any) -> float:
    """A stored step as a float; NaN for text, blobs or NULLs another writer may have left."""
    return float(value) if type(value) is int or type(value) is float else float("nan")


def _numbers(values: tuple) -> np.ndarray:
    """`_number` of each stored step, in one pass when all are ints and floats."""
    if set(map(type, values)) <= NUMBER_TYPES:
        return np.array(values, dtype=np.float64)
    return np.fromiter(map(_number, values), np.float64, count=len(values))


def _run_key(key: Any, name: Any) -> tuple[str, str] | None:
    """(key, name) as text; a row with neither cannot belong to a run and is skipped."""
    if key is None and name is None:
        return None
    key = name if key is None else key
    name = key if name is None else name
    return (key if isinstance(key, str) else str(key),
            name if isinstance(name, str) else str(name))


def _depth(value: Any, limit: int) -> int:
    """How deep `value` nests, counting no further than `limit` + 1."""
    deepest, stack = 0, [(value, 0)]
    while stack and deepest <= limit:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _config(payload: Any) -> dict[str, Any]:
    """A run's config; one nested too deeply to display or send is replaced by a note."""
    config = decode_payload(payload)
    if _depth(config, MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH:
        return {"_error": f"config nested deeper than {MAX_CONFIG_DEPTH} levels; not shown"}
    return config


def _created_order(run: RunInfo) -> tuple[float, str]:
    """Creation order that a run without a readable creation time cannot break."""
    return (run.created if run.created == run.created else float("-inf"), run.key)


class RichRef(NamedTuple):
    """Where one rich value (image, table, histogram, markdown…) was logged; its value stays in
    the database (`rich.load_values` reads it by row id), so memory holds only this."""

    row_id: int
    run: str
    step: float
    time: float
    key: str  # the flattened metric name, e.g. "eval/samples"
    kind: str  # trackio's `_type`, e.g. "trackio.image"


class Alert(NamedTuple):
    """One trackio.alert: text fields exactly as logged (hostile until escaped)."""

    row_id: int
    run: str  # run key
    run_name: str
    time: float
    title: str
    text: str
    level: str  # "info", "warn" or "error" from trackio; anything else is kept as written
    step: float  # NaN when the alert has no step


RICH_REF_BYTES = 160  # what one RichRef costs in memory, for the store's byte bound
DERIVED_MAX = 32  # values derived per version (indexes, fingerprints), before they are dropped


@dataclass
class RunInfo:
    key: str
    name: str
    created: float
    first_time: float
    rows: int = 0
    last_step: float = float("nan")
    last_time: float = float("nan")
    system_first_time: float = float("nan")


@dataclass
class ProjectState:
    """One project's rows as columns per run, plus the cursors up to which they are read."""

    project: str
    path: Path
    inode: int
    schema: storage.Schema
    version: str = ""
    changed_at: float = field(default_factory=time.time)
    checked_at: float = 0.0  # time.monotonic() of the last version check
    metric_cursor: int = 0
    system_cursor: int = 0
    metric_rows: int = 0
    system_rows: int = 0
    counted_at: float = 0.0
    runs: dict[str, RunInfo] = field(default_factory=dict)
    metrics: dict[str, Columns] = field(default_factory=dict)
    system: dict[str, Columns] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_names: set[str] = field(default_factory=set)
    system_names: set[str] = field(default_factory=set)
    rich: list[RichRef] = field(default_factory=list)  # in row order
    alerts: list[Alert] = field(default_factory=list)  # in row order
    alert_cursor: int = 0
    store_generation: str = ""  # the series store this state extends ("" = none)
    stored_rows: int = 0  # metric + system rows the store held when last written or read
    stored_at: float = 0.0  # time.monotonic() of that
    # While another worker or thread builds the series store: what the page says (the state
    # holds what that build committed so far and is read again at the next tick); "" otherwise.
    building: str = ""
    building_target: int = 0  # while this process builds the store: the last metric row id
    # Where grouped EMA lines stopped: rows only grow within a state, so these outlive a version.
    group_ema: GroupEma = field(default_factory=GroupEma, repr=False, compare=False)
    _derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    _derived_version: str = field(default="", repr=False, compare=False)

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.metrics.values()) + sum(
            c.nbytes for c in self.system.values()) + RICH_REF_BYTES * len(self.rich) + sum(
            len(a.title) + len(a.text) + RICH_REF_BYTES for a in self.alerts) + self.group_ema.nbytes

    def runs_newest_first(self) -> list[RunInfo]:
        return sorted(self.runs.values(), key=_created_order, reverse=True)

    def derived(self, key: Any, compute: Callable[[ProjectState], T]) -> T:
        """`compute(self)` once per version and key: every request of a tick shares it.

        For indexes and fingerprints that polls need (a poll should cost a lookup, not a scan
        of every row). At most DERIVED_MAX keys per version, so keys that name a selection
        cannot grow it without bound; a new version starts empty.
        """
        if self._derived_version != self.version:
            self._derived, self._derived_version = {}, self.version
        memo = self._derived
        if key not in memo:
            if len(memo) >= DERIVED_MAX:
                memo.clear()
            memo[key] = compute(self)
        return memo[key]

    def colour_rank(self) -> dict[str, int]:
        """Rank runs by creation so a run's colour never changes when newer runs appear."""
        ordered = sorted(self.runs.values(), key=_created_order)
        return {run.key: rank for rank, run in enumerate(ordered)}


class ProjectStore:
    """Per-process cache of ProjectState, bounded in bytes, evicting least recently used projects."""

    def __init__(self, data_dir: Path, memory_bytes: int,
                 series_store: SeriesStore | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.series_store = series_store
        self.rows_read = 0  # metric and system rows decoded from SQLite, for tests and benches
        self.memory_bytes = memory_bytes
        self._states: OrderedDict[str, ProjectState] = OrderedDict()
        self._lock_for = KeyedLocks()
        self._guard = threading.Lock()
        self.loads = 0
        self.catch_ups = 0
        self._building: set[str] = set()  # projects whose store this process is building

    def current_version(self, project: str) -> str:
        """Return the project's version without reading any rows."""
        return storage.version(storage.existing_db_path(self.data_dir, project))

    def get(self, project: str, max_age: float = 0.0) -> ProjectState:
        """Return the project's state, caught up with every committed row.

        With `max_age` > 0 a state checked less than `max_age` seconds ago is returned as it
        is: however many commits arrive, a project is caught up at most once per tick, and
        every request in that tick sees the same version.
        """
        state = self._states.get(project)
        if state is not None and max_age > 0 and time.monotonic() - state.checked_at < max_age:
            self._touch(project)
            return state
        path = storage.existing_db_path(self.data_dir, project)
        lock = self._lock_for(project)
        # A build that ends within the grace (any small project) is waited for, so a crowd
        # arriving at a cold server sees whole pages; only a long build answers in parts.
        if not lock.acquire(timeout=PARTIAL_AFTER_S):
            if project in self._building:
                # This process is building the project's store: answer with what it has
                # committed so far instead of waiting minutes for the whole.
                return self._partial(project, path)
            lock.acquire()
        try:
            state = self._states.get(project)
            now_version = storage.version(path)
            if state is not None and state.version == now_version and not state.building:
                state.checked_at = time.monotonic()
                self._touch(project)
                return state
            inode = path.stat().st_ino
            self.catch_ups += 1
            conn = storage.open_readonly(path)
            try:
                schema = storage.detect_schema(conn)
                if state is None or state.inode != inode or state.schema != schema \
                        or state.building:
                    state = self._load(conn, project, path, inode, schema)
                    previous_changed_at = state.changed_at
                else:
                    previous_changed_at = state.changed_at
                    if self._catch_up(conn, state):
                        self._append(conn, state)
                    else:
                        state = self._load(conn, project, path, inode, schema)
                state.changed_at = time.time() if state.version else previous_changed_at
                state.version = _shown_version(now_version, state)
                state.checked_at = time.monotonic()
            finally:
                conn.close()
            self._states[project] = state
            self._touch(project)
        finally:
            lock.release()
        self._evict(keep=project)
        return state

    def _another_worker_builds(self, project: str, path: Path) -> bool:
        """True when another worker holds the store's lock for a build that has not ended
        within the grace (a lock held for an append is let go in moments)."""
        store = self.series_store
        deadline = time.monotonic() + PARTIAL_AFTER_S
        while True:
            with store.lock(project, path, blocking=False) as held:
                if held is not False or not store.building(project, path):
                    return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.05)  # flock has no timed wait: ask again until the grace is over

    def _partial(self, project: str, path: Path) -> ProjectState:
        """What the store build running in this process committed so far (not kept)."""
        conn = storage.open_readonly(path)
        try:
            schema = storage.detect_schema(conn)
            state = self._ready_part(conn, project, path, path.stat().st_ino, schema)
            state.version = _shown_version(storage.version(path), state)
            state.checked_at = time.monotonic()
            return state
        finally:
            conn.close()

    def _ready_part(self, conn, project: str, path: Path, inode: int,
                    schema: storage.Schema) -> ProjectState:
        """The store as its running build committed it so far, marked as partial; no rows
        are decoded (the builder decodes them once for every worker)."""
        store = self.series_store
        restored = store.restore(project, path, schema, conn)
        if restored is None:
            state = ProjectState(project, path, inode, schema)
        else:
            state = _from_restored(project, path, inode, schema, restored)
        target = store.building(project, path) or storage.last_id(conn, schema)
        share = min(99, int(100 * state.metric_cursor / max(target, 1)))
        runs = len(state.runs)
        state.building = (f"Building the history store: {share}% of the rows are ready "
                          f"({runs} run{'' if runs == 1 else 's'} so far). Charts show what is "
                          "ready and fill in as the build goes on.")
        return state

    def _load(self, conn, project: str, path: Path, inode: int,
              schema: storage.Schema) -> ProjectState:
        """A state caught up with every row: from the series store plus the rows past its
        watermark when it is valid, else decoded from the start and written to the store.
        Under the store's lock, so of N workers starting at once one builds, the others wait
        and then read it."""
        self.loads += 1
        store = self.series_store
        if store is None:
            state = ProjectState(project, path, inode, schema)
            self._catch_up(conn, state)
            return state
        if self._another_worker_builds(project, path):
            # Serve what its build committed rather than wait for the whole of it.
            return self._ready_part(conn, project, path, inode, schema)
        with store.lock(project, path) as held:
            if held:
                restored = store.restore(project, path, schema, conn)
                if restored is not None:
                    state = _from_restored(project, path, inode, schema, restored)
                    if self._catch_up(conn, state):
                        if store.due(state):
                            self._write(conn, state, full=False)
                        return state
                    log.info("series store of %r: rows before its watermark changed; "
                             "rebuilding", project)
            started = time.monotonic()
            state = ProjectState(project, path, inode, schema)
            if not held:
                self._catch_up(conn, state)
                memory_release.release()
                return state
            target = storage.last_id(conn, schema)
            store.mark_building(project, path, target)
            self._building.add(project)
            try:
                state.building_target = target
                self._catch_up(conn, state)
            finally:
                self._building.discard(project)
                state.building_target = 0
            self._write(conn, state, full=not state.store_generation)
            log.info("series store of %r built: %d rows in %.1f s", project,
                     state.metric_rows + state.system_rows, time.monotonic() - started)
            # The decode's chunks (and, once mapped back, the decoded copies) were freed, but
            # glibc keeps them: ~120 MB of a 10,000-run project's build stayed in the worker.
            memory_release.release()
            return state

    def _append(self, conn, state: ProjectState) -> None:
        """Add the rows read since the last write to the store when enough have piled up;
        skipped when another worker is writing (it or the next tick adds them)."""
        store = self.series_store
        if store is None or not state.store_generation or not store.due(state):
            return
        with store.lock(state.project, state.path, blocking=False) as held:
            if held:
                self._write(conn, state, full=False)

    def _write(self, conn, state: ProjectState, full: bool) -> None:
        try:
            self.series_store.write(state.project, state.path, state, conn, full)
        except OSError as exc:  # disk full, folder removed: the store is a cache, serve on
            state.store_generation = ""
            log.warning("series store of %r not written: %s", state.project, exc)

    def peek(self, project: str) -> ProjectState | None:
        """Return the state as last read, without touching the database."""
        return self._states.get(project)

    def invalidate(self, project: str) -> None:
        """Forget a project (after our own rename or delete)."""
        with self._lock_for(project):
            self._states.pop(project, None)

    def _touch(self, project: str) -> None:
        with self._guard:
            if project in self._states:
                self._states.move_to_end(project)

    def _evict(self, keep: str) -> None:
        with self._guard:
            total = sum(s.nbytes for s in self._states.values())
            for name in list(self._states):
                if total <= self.memory_bytes:
                    break
                if name == keep:
                    continue
                total -= self._states.pop(name).nbytes
                log.info("evicted series of project %r to stay under the memory bound", name)

    def _catch_up(self, conn, state: ProjectState) -> bool:
        """Read rows added since the cursors; False when rows vanished or were rewritten.

        One read transaction, so the counts and the rows describe the same commit; rows are
        read in chunks so a cold load of millions of rows never holds them all at once.
        """
        storage.snapshot(conn)
        try:
            return self._catch_up_in_snapshot(conn, state)
        finally:
            conn.rollback()  # ends the read transaction

    def _catch_up_in_snapshot(self, conn, state: ProjectState) -> bool:
        configs = [(ids[0], ids[1], payload, created) for key, name, payload, created
                   in storage.config_rows(conn, state.schema)
                   if (ids := _run_key(key, name)) is not None]
        # Renames rewrite config rows: a known run under another name means rebuild.
        if state.metric_rows:
            for key, name, _, _ in configs:
                known = state.runs.get(key)
                if known is not None and known.name != name:
                    return False
        read_metrics = self._read_chunks(
            lambda since: storage.metric_rows(conn, state.schema, since, limit=CHUNK),
            state.metric_cursor, lambda rows: self._apply_metrics(state, rows),
            f"project {state.project!r} metrics", lambda: storage.last_id(conn, state.schema),
            lambda read: self._commit_part(conn, state, read))
        read_system = self._read_chunks(
            lambda since: storage.system_rows(conn, state.schema, since, limit=CHUNK),
            state.system_cursor, lambda rows: self._apply_system(state, rows))
        # Deletes never add rows. COUNT(*) reads the whole table, so it runs when a commit
        # added nothing (a delete or rename), on a fresh state, and at most every
        # RECOUNT_S otherwise; a delete racing an insert is caught by that next recount.
        now = time.monotonic()
        if (read_metrics == 0 and read_system == 0) or not state.counted_at \
                or now - state.counted_at > RECOUNT_S:
            metric_count = storage.row_count(conn, "metrics")
            system_count = storage.row_count(conn, "system_metrics")
            if metric_count != state.metric_rows + read_metrics:
                return False
            if system_count != state.system_rows + read_system:
                return False
            state.counted_at = now
        state.metric_rows += read_metrics
        state.system_rows += read_system
        self.rows_read += read_metrics + read_system
        self._apply_alerts(state, storage.alert_rows(conn, state.schema, state.alert_cursor))
        for key, _name, payload, created in configs:
            state.configs[key] = _config(payload)
            run = state.runs.get(key)
            if run is not None:
                created_at = parse_timestamp(created)
                if created_at == created_at and created_at < run.created:
                    run.created = created_at
        return True

    @staticmethod
    def _read_chunks(fetch, since: int, apply, what: str = "", last_id=lambda: 0,
                     progress=lambda read: None) -> int:
        """Apply rows after `since` chunk by chunk; a long read (a cold build) logs its
        progress every PROGRESS_S towards `last_id` and hands it to `progress`."""
        total = 0
        started = reported = time.monotonic()
        while True:
            rows = fetch(since)
            if not rows:
                return total
            apply(rows)
            total += len(rows)
            since = rows[-1][0]
            if len(rows) < CHUNK:
                return total
            now = time.monotonic()
            if now - reported >= PROGRESS_S:
                reported = now
                log.info("%s: %d rows decoded (%.0f%% of the ids), %.0f rows/s", what, total,
                         100.0 * since / max(last_id(), since, 1), total / (now - started))
                progress(total)

    def _commit_part(self, conn, state: ProjectState, read: int) -> None:
        """During a store build, commit the rows decoded so far once they have doubled since
        the last commit (so each row is copied O(1) times), for other workers and threads
        to serve meanwhile."""
        if not state.building_target or read < 2 * (state.stored_rows - state.metric_rows):
            return
        base = state.metric_rows
        state.metric_rows = base + read  # the rows up to the cursor, as the manifest counts
        try:
            self.series_store.write(state.project, state.path, state, conn,
                                    full=not state.store_generation,
                                    building=state.building_target)
        except OSError as exc:
            log.warning("series store of %r: part not written: %s", state.project, exc)
        finally:
            state.metric_rows = base

    def _run(self, state: ProjectState, key: str, name: str, stamp: float,
             names_it: bool) -> RunInfo:
        run = state.runs.get(key)
        if run is None:
            run = RunInfo(key=key, name=name, created=stamp, first_time=stamp)
            state.runs[key] = run
        elif names_it:
            run.name = name
        return run

    def _apply_metrics(self, state: ProjectState, rows: list[tuple]) -> None:
        """Append a chunk of metric rows to their runs' columns.

        A cold build passes millions of rows through here, so each column of the chunk is
        decoded in one vectorised pass (stamps, steps, payloads) and Python loops per run,
        not per row; rows holding anything but numbers take the row-by-row path."""
        if not rows:
            return
        row_ids, raw_keys, raw_names, stamp_texts, raw_steps, payloads = zip(*rows, strict=True)
        stamps = parse_many(stamp_texts)
        steps = _numbers(raw_steps)
        decoded = decode_payloads(payloads)
        ids = np.asarray(row_ids, dtype=np.int64)
        rich: list[tuple[int, RichRef]] = []
        for run, offsets in self._rows_per_run(state, raw_keys, raw_names, stamps):
            whole = len(offsets) == len(rows)
            chosen = slice(None) if whole else np.asarray(offsets)
            members = decoded if whole else [decoded[offset] for offset in offsets]
            run_steps, run_stamps = steps[chosen], stamps[chosen]
            if not only_numbers(members):
                members = [self._scalars(run.key, value, int(ids[offset]), float(steps[offset]),
                                         float(stamps[offset]), offset, rich)
                           for offset, value in zip(offsets, members, strict=True)]
            columns = state.metrics.setdefault(run.key, Columns())
            columns.extend(ids[chosen], run_steps, run_stamps, members)
            state.metric_names.update(columns.metrics)
            run.rows += len(offsets)
            run.last_step = float(run_steps[-1])
            timed = run_stamps[~np.isnan(run_stamps)]
            if timed.size:
                run.last_time = float(timed[-1])
        rich.sort(key=lambda found: found[0])  # logging order, across runs
        state.rich.extend(ref for _, ref in rich)
        state.metric_cursor = rows[-1][0]

    def _rows_per_run(self, state: ProjectState, raw_keys: tuple, raw_names: tuple,
                      stamps: np.ndarray) -> list[tuple[RunInfo, list[int]]]:
        """Each run of the chunk with its rows' offsets, in order; the latest row names it."""
        pairs = offsets_by(list(zip(raw_keys, raw_names, strict=True)))
        spellings: dict[str, list[tuple[str, list[int]]]] = {}
        for (raw_key, raw_name), offsets in pairs.items():  # in order of first appearance
            ids = _run_key(raw_key, raw_name)
            if ids is not None:  # a row with neither key nor name belongs to no run
                spellings.setdefault(ids[0], []).append((ids[1], offsets))
        found = []
        for key, named in spellings.items():
            first, latest = named[0][1][0], max(named, key=lambda pair: pair[1][-1])[0]
            run = self._run(state, key, latest, float(stamps[first]), names_it=True)
            # One run written under two raw spellings (a number and its text): merge, in order.
            offsets = named[0][1] if len(named) == 1 else sorted(
                offset for _, part in named for offset in part)
            found.append((run, offsets))
        return found

    @staticmethod
    def _scalars(key: str, values: dict[str, Any], row_id: int, step: float, stamp: float,
                 offset: int, rich: list[tuple[int, RichRef]]) -> dict[str, float]:
        """A row's plottable numbers; its rich values (media, tables…) go to `rich`."""
        found: list[tuple[str, str]] = []
        numbers = scalar_metrics(values, rich=found)
        rich.extend((offset, RichRef(row_id, key, step, stamp, metric, kind))
                    for metric, kind in found)
        return numbers

    def _apply_alerts(self, state: ProjectState, rows: list[tuple]) -> None:
        for row_id, raw_key, raw_name, stamp_text, title, text, level, step in rows:
            state.alert_cursor = row_id
            ids = _run_key(raw_key, raw_name)
            if ids is None:
                continue
            state.alerts.append(Alert(row_id, ids[0], ids[1], parse_timestamp(stamp_text),
                                      str(title or ""), str(text or ""), str(level or "warn"),
                                      _number(step)))

    def _apply_system(self, state: ProjectState, rows: list[tuple]) -> None:
        for row_id, raw_key, raw_name, stamp_text, payload in rows:
            state.system_cursor = row_id
            ids = _run_key(raw_key, raw_name)
            if ids is None:
                continue
            key, name = ids
            stamp = parse_timestamp(stamp_text)
            run = self._run(state, key, name, stamp, names_it=False)
            if run.system_first_time != run.system_first_time:
                run.system_first_time = stamp
            values = scalar_metrics(decode_payload(payload))
            state.system_names.update(values)
            columns = state.system.setdefault(key, Columns())
            columns.append(row_id, float("nan"), stamp, values)


def _from_restored(project: str, path: Path, inode: int, schema: storage.Schema,
                   restored: Restored) -> ProjectState:
    """A state holding the store's series (mapped, not copied) and cursors at its watermark."""
    state = ProjectState(
        project, path, inode, schema, metric_cursor=restored.metric_cursor,
        system_cursor=restored.system_cursor, metric_rows=restored.metric_rows,
        system_rows=restored.system_rows, store_generation=restored.generation,
        stored_rows=restored.metric_rows + restored.system_rows, stored_at=time.monotonic())
    state.runs = {key: RunInfo(**fields) for key, fields in restored.runs.items()}
    state.metrics, state.system = restored.metrics, restored.system
    state.metric_names = {name for columns in state.metrics.values() for name in columns.metrics}
    state.system_names = {name for columns in state.system.values() for name in columns.metrics}
    state.rich = [RichRef(*ref) for ref in restored.rich]
    return state


BUILDING_MARK = "~building"


def _shown_version(version: str, state: ProjectState) -> str:
    """The version a page shows: a partial state's names its watermark too, so a poll sees
    the build's next commit as new data, and the complete state as new again."""
    return f"{version}{BUILDING_MARK}{state.metric_cursor}" if state.building else version


def shown_while_building(version: str) -> bool:
    """Whether a page's version was shown while the store was being built (its notice is up)."""
    return BUILDING_MARK in version
