"""Validate and store what Trackio clients send: log batches, system logs, alerts, media uploads,
and run renames and deletes. No Flask here."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import artifacts, media, storage, timestamps
from .locks import KeyedLocks
from .writer import AlertRow, ConfigRow, MetricRow, ProjectWriter, SystemRow, TraceRow, WriteRefused

log = logging.getLogger(__name__)

MAX_NAME = 512
LEVELS = ("info", "warn", "error")
# Steps are drawn by browsers, whose numbers are exact up to 2**53.
MAX_STEP = 2**53
MAX_DEPTH = 64
TRACE_TYPE = "trackio.trace"
SEARCHABLE_SPAN_FIELDS = ("id", "name", "kind", "model", "status", "error", "metadata")


class InvalidEntry(ValueError):
    """A batch entry that cannot be stored; the message names the entry."""


def _check_value(value: Any, where: str) -> None:
    """Refuse values the store or the reader cannot hold: deep nesting and overlong keys."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidEntry(f"{where} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if len(key) > MAX_NAME:
                    raise InvalidEntry(f"{where} has a key longer than {MAX_NAME} characters")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _text(entry: dict, key: str, index: int, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise InvalidEntry(f"entry {index}: '{key}' must be a non-empty string "
                           f"of at most {MAX_NAME} characters")
    return value


def _step(entry: dict, index: int) -> int | None:
    step = entry.get("step")
    if step is None:
        return None
    whole = isinstance(step, int) or (isinstance(step, float) and step.is_integer())
    if isinstance(step, bool) or not whole or not -MAX_STEP <= step <= MAX_STEP:
        raise InvalidEntry(f"entry {index}: 'step' must be a whole number from -2**53 to 2**53, "
                           "or null")
    return int(step)


def _timestamp(entry: dict, index: int) -> str:
    value = entry.get("timestamp")
    if value is None:
        return timestamps.now_iso()
    checked = timestamps.checked(value)
    if checked is None:
        raise InvalidEntry(f"entry {index}: 'timestamp' must be an ISO 8601 time between "
                           f"{timestamps.LOWEST.year} and {timestamps.HIGHEST.year}")
    return checked


def _common(entry: Any, index: int) -> tuple[str, str, str]:
    if not isinstance(entry, dict):
        raise InvalidEntry(f"entry {index} must be an object")
    project = _text(entry, "project", index)
    try:
        storage.validate_project_name(project)
    except storage.InvalidProjectName as exc:
        raise InvalidEntry(f"entry {index}: {exc}") from None
    run = _text(entry, "run", index)
    run_id = _text(entry, "run_id", index, required=False) or run
    return project, run, run_id


def _metrics(entry: dict, index: int) -> dict[str, Any]:
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict):
        raise InvalidEntry(f"entry {index}: 'metrics' must be an object")
    _check_value(metrics, f"entry {index}: 'metrics'")
    return metrics


def _is_trace(value: Any) -> bool:
    return isinstance(value, dict) and value.get("_type") == TRACE_TYPE


def _search_text(messages: Any, metadata: Any, spans: Any) -> str:
    """The words trace search matches, as trackio flattens them (span inputs and outputs left
    out: they repeat the conversation). Values were depth-checked on the way in."""
    parts: list[str] = []

    def visit(value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)
        else:
            parts.append(str(value))

    visit(messages)
    visit(metadata)
    for span in spans if isinstance(spans, list) else [spans]:
        if isinstance(span, dict):
            for field in SEARCHABLE_SPAN_FIELDS:
                visit(span.get(field))
        else:
            visit(span)
    return " ".join(parts).lower()


def split_traces(metrics: dict[str, Any], run: str, run_id: str, step: int, stamp: str,
                 log_id: str | None) -> tuple[dict[str, Any], list[TraceRow]]:
    """Move trackio.Trace values (alone or in lists) out of a metrics row into trace rows, as
    trackio's server does; the ids derive from the log_id, so a replay stores them once."""
    clean: dict[str, Any] = {}
    rows: list[TraceRow] = []
    for key, value in metrics.items():
        is_list = isinstance(value, list)
        candidates = value if is_list else [value]
        found = [(index if is_list else None, item) for index, item in enumerate(candidates)
                 if _is_trace(item)]
        if not found:
            clean[key] = value
            continue
        if is_list:
            rest = [item for item in candidates if not _is_trace(item)]
            if rest:
                clean[key] = rest
        for index, trace in found:
            parts = [run_id or run, log_id or uuid.uuid4().hex, key]
            if index is not None:
                parts.append(str(index))
            trace_id = ":".join(parts)
            messages = trace.get("messages", [])
            metadata = trace.get("metadata", {})
            spans = trace.get("spans", [])
            text = f"{trace_id} {key} {_search_text(messages, metadata, spans)}".lower()
            rows.append(TraceRow(trace_id, run_id, run, stamp, step, key, index, messages,
                                 metadata, spans, text, log_id))
    return clean, rows


def _entries(value: Any, name: str) -> list:
    if not isinstance(value, list):
        raise InvalidEntry(f"'{name}' must be a list of entries")
    return value


class Ingest:
    """One writer per project database, used under a lock (a batch is one transaction)."""

    def __init__(self, data_dir: Path, journal_mode: str, busy_timeout: float) -> None:
        self.data_dir = Path(data_dir)
        self.journal_mode = journal_mode
        self.busy_timeout = busy_timeout
        self._writers: dict[str, ProjectWriter] = {}
        self._lock = KeyedLocks()

    def _writer(self, project: str) -> ProjectWriter:
        """The project's writer; reopened when its file was deleted or replaced meanwhile (a
        write to the old file would be acknowledged and lost) or a failure closed it."""
        writer = self._writers.get(project)
        if writer is not None and not writer.is_current():
            log.warning("%s.db was deleted, replaced or closed since it was opened: reopening",
                        project)
            writer.close()
            writer = None
        if writer is None:
            writer = ProjectWriter(storage.db_path(self.data_dir, project), self.journal_mode,
                                   self.busy_timeout)
            self._writers[project] = writer
        return writer

    @contextmanager
    def locked(self, project: str) -> Iterator[ProjectWriter]:
        """The project's writer, held exclusively (for run rename and delete)."""
        with self._lock(project):
            yield self._writer(project)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def log(self, logs: Any) -> int:
        """Store `bulk_log` entries: {project, run, run_id?, metrics, step?, config?, log_id?}."""
        per_project: dict[str, tuple[list, dict]] = {}
        for index, entry in enumerate(_entries(logs, "logs")):
            project, run, run_id = _common(entry, index)
            metrics = _metrics(entry, index)
            config = entry.get("config")
            if config is not None and not isinstance(config, dict):
                raise InvalidEntry(f"entry {index}: 'config' must be an object or null")
            if config:
                _check_value(config, f"entry {index}: 'config'")
            log_id = _text(entry, "log_id", index, required=False)
            rows, configs = per_project.setdefault(project, ([], {}))
            rows.append((run, run_id, _timestamp(entry, index), _step(entry, index), metrics,
                         log_id))
            if config:
                configs.setdefault(run_id, ConfigRow(run_id, run, config, timestamps.now_iso()))
        written = 0
        for project, (rows, configs) in per_project.items():
            with self._lock(project):
                writer = self._writer(project)
                metric_rows = []
                trace_rows: list[TraceRow] = []
                next_steps: dict[str, int] = {}
                for run, run_id, stamp, step, metrics, log_id in rows:
                    if step is None:
                        # Like Trackio's server: a missing step continues after the last one.
                        if run_id not in next_steps:
                            last = writer.last_step(run_id, run)
                            next_steps[run_id] = 0 if last is None else last + 1
                        step = next_steps[run_id]
                        if step > MAX_STEP:
                            raise InvalidEntry(f"run {run!r} is at the largest step (2**53); "
                                               "log with an explicit step")
                    next_steps[run_id] = max(next_steps.get(run_id, 0), step + 1)
                    metrics, traces = split_traces(metrics, run, run_id, step, stamp, log_id)
                    trace_rows += traces
                    metric_rows.append(MetricRow(run_id, run, stamp, step, metrics, log_id))
                written += writer.write(metrics=metric_rows, configs=list(configs.values()),
                                        traces=trace_rows)
        return written

    def log_system(self, logs: Any) -> int:
        """Store `bulk_log_system` entries: {project, run, run_id?, metrics, timestamp, log_id?}."""
        per_project: dict[str, list[SystemRow]] = {}
        for index, entry in enumerate(_entries(logs, "logs")):
            project, run, run_id = _common(entry, index)
            per_project.setdefault(project, []).append(SystemRow(
                run_id, run, _timestamp(entry, index), _metrics(entry, index),
                _text(entry, "log_id", index, required=False)))
        return self._write_each(per_project, "system")

    def alert(self, alerts: Any) -> int:
        """Store `bulk_alert` entries: {project, run, run_id?, title, text?, level, step?, ...}."""
        per_project: dict[str, list[AlertRow]] = {}
        for index, entry in enumerate(_entries(alerts, "alerts")):
            project, run, run_id = _common(entry, index)
            level = entry.get("level", "warn")
            if level not in LEVELS:
                raise InvalidEntry(f"entry {index}: 'level' must be info, warn or error")
            text = entry.get("text")
            if text is not None and not isinstance(text, str):
                raise InvalidEntry(f"entry {index}: 'text' must be a string or null")
            per_project.setdefault(project, []).append(AlertRow(
                run_id, run, _timestamp(entry, index), _text(entry, "title", index), text, level,
                _step(entry, index), _text(entry, "alert_id", index, required=False)))
        return self._write_each(per_project, "alerts")

    def _write_each(self, per_project: dict[str, list], kind: str) -> int:
        """One transaction per project: `kind` is the writer's keyword (system, alerts)."""
        written = 0
        for project, rows in per_project.items():
            with self._lock(project):
                written += self._writer(project).write(**{kind: rows})
        return written

    def upload_media(self, uploads: Any) -> int:
        """Place files staged by /api/upload (`bulk_upload_media` entries: {project, run?, step?,
        relative_path?, uploaded_file: {path, orig_name}}); all entries are checked first."""
        placements, staged_files = [], []
        try:
            for index, entry in enumerate(_entries(uploads, "uploads")):
                if not isinstance(entry, dict):
                    raise InvalidEntry(f"entry {index} must be an object")
                try:
                    staged = media.staged_file(self.data_dir, entry.get("uploaded_file"))
                except media.MediaError as exc:
                    raise InvalidEntry(f"entry {index}: {exc}") from None
                staged_files.append(staged)
                project = _text(entry, "project", index)
                run = _text(entry, "run", index, required=False)
                relative_path = entry.get("relative_path")
                if relative_path is not None and not isinstance(relative_path, str):
                    raise InvalidEntry(f"entry {index}: 'relative_path' must be a string or null")
                name = media.file_name(entry["uploaded_file"].get("orig_name"), staged.name)
                try:
                    target = media.target_path(self.data_dir, project, run,
                                               _step(entry, index), relative_path, name)
                except (media.MediaError, storage.InvalidProjectName) as exc:
                    raise InvalidEntry(f"entry {index}: {exc}") from None
                placements.append((staged, target))
            placed: list[Path] = []
            for staged, target in placements:
                try:
                    media.place(staged, target, self.data_dir)
                except (media.MediaError, OSError) as exc:
                    # All or nothing: the client uploads the whole batch again.
                    for done in placed:
                        done.unlink(missing_ok=True)
                    reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                    raise InvalidEntry(f"{target.name} could not be stored ({reason}); "
                                       "nothing of this batch was kept") from None
                placed.append(target)
        except InvalidEntry:
            # Like trackio: a refused batch drops its staged files; the client uploads again.
            for staged in staged_files:
                staged.unlink(missing_ok=True)
            raise
        return len(placements)

    def _existing_writer(self, project: str) -> ProjectWriter | None:
        """The project's writer, or None when it has no database (never create one here)."""
        if not storage.db_path(self.data_dir, project).is_file():
            return None
        return self._writer(project)

    def rename_run(self, project: str, old_name: str, new_name: str,
                   run_id: str | None = None) -> int:
        """Rename a run like trackio: rows, configs, alerts, traces and the media files (their
        paths in the rows too). Returns how many media files moved."""
        new_name = new_name.strip()
        if not new_name:
            raise InvalidEntry("New run name cannot be empty")
        if len(new_name) > MAX_NAME or any(ord(c) < 32 for c in new_name):
            raise InvalidEntry(f"a run name needs 1 to {MAX_NAME} printable characters")
        try:
            media.name_parts(new_name, "new_name")
        except media.MediaError as exc:
            raise InvalidEntry(str(exc)) from None
        moves: list[tuple[str, str]] = []
        with self._lock(project):
            writer = self._existing_writer(project)
            if writer is None:
                raise InvalidEntry(f"Project '{project}' does not exist")
            key = writer.resolve_run_key(old_name, run_id)
            if key is None:
                raise InvalidEntry(f"Run '{old_name}' does not exist in project '{project}'")
            if not writer.keyed["metrics"] and writer.name_in_use(new_name):
                raise InvalidEntry(f"A run named '{new_name}' already exists in project "
                                   f"'{project}'")
            old_prefix, new_prefix = f"{project}/{old_name}/", f"{project}/{new_name}/"
            writer.rename_run_with_media(
                key, new_name, lambda value: media.rewrite_paths(value, old_prefix, new_prefix,
                                                                 moves))
            moved = media.move_files(self.data_dir, moves)
        if moved < len(moves):
            log.info("rename of a run in %r: %d of %d media files were not found to move",
                     project, len(moves) - moved, len(moves))
        return moved

    def delete_run(self, project: str, run: str | None, run_id: str | None) -> bool:
        """Delete a run's rows everywhere (media files stay, as with trackio); False when the
        project or the run is unknown."""
        with self._lock(project):
            writer = self._existing_writer(project)
            if writer is None:
                return False
            key = writer.resolve_run_key(run, run_id)
            if key is None:
                return False
            writer.delete_run_everywhere(key)
        return True

    def upload_artifact_blobs(self, project: str, uploads: Any) -> int:
        """Store staged files as content-addressed blobs (`bulk_upload_artifact_blob` entries:
        {digest, uploaded_file}); each file must hash to its digest."""
        checked = []
        for index, entry in enumerate(_entries(uploads, "uploads")):
            if not isinstance(entry, dict):
                raise InvalidEntry(f"entry {index} must be an object")
            try:
                checked.append((artifacts.digest(entry.get("digest")),
                                media.staged_file(self.data_dir, entry.get("uploaded_file"))))
            except (artifacts.ArtifactError, media.MediaError) as exc:
                raise InvalidEntry(f"entry {index}: {exc}") from None
        for index, (digest, staged) in enumerate(checked):
            try:
                artifacts.store_blob(self.data_dir, project, digest, staged)
            except artifacts.ArtifactError as exc:
                for _digest, rest in checked[index + 1:]:
                    rest.unlink(missing_ok=True)
                raise InvalidEntry(str(exc)) from None
        return len(checked)

    def commit_artifact(self, project: str, **version: Any) -> dict[str, Any]:
        """Commit a validated artifact version (see ProjectWriter.commit_artifact) and return
        trackio's manifest record of it; blobs no version uses any more are removed."""
        with self._lock(project):
            writer = self._writer(project)
            try:
                version_id, unused = writer.commit_artifact(now=timestamps.now_iso(), **version)
            except WriteRefused as exc:
                raise InvalidEntry(str(exc)) from None
            rows = writer.conn.execute("SELECT version FROM artifact_versions WHERE id = ?",
                                       (version_id,)).fetchone()
            record = artifacts.manifest_record(writer.conn, version["name"], f"v{rows[0]}")
        for digest in unused:
            artifacts.blob_path(self.data_dir, project, digest).unlink(missing_ok=True)
        return record or {}

    def link_artifact_use(self, project: str, version_id: int, run_name: str | None,
                          run_id: str | None) -> None:
        with self._lock(project):
            writer = self._existing_writer(project)
            if writer is None or not writer.link_artifact_use(version_id, run_name, run_id,
                                                              timestamps.now_iso()):
                raise InvalidEntry(f"Artifact version {version_id} does not exist in project "
                                   f"'{project}'")
