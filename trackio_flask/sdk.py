"""The logging SDK: init / log / log_system / finish, writing Trackio's schema from a background thread."""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from . import storage, timestamps
from .settings import load_settings
from .writer import ConfigRow, DatabaseBusy, MetricRow, ProjectWriter, SystemRow

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5
RESERVED_KEYS = frozenset({"project", "run", "timestamp", "step", "time", "metrics"})
_ADJECTIVES = ("amber", "brisk", "calm", "dainty", "eager", "fuzzy", "gentle", "hazy", "lucky",
               "misty", "noble", "quiet", "rapid", "sunny", "vivid", "witty")
_NOUNS = ("sunset", "river", "meadow", "comet", "forest", "harbor", "lantern", "pebble",
          "breeze", "summit", "canyon", "glacier", "orchard", "falcon", "willow", "ember")


def _clean_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    # Same rule as Trackio: reserved names would collide with the step/timestamp columns.
    cleaned = {}
    for key, value in metrics.items():
        key = str(key)
        if key in RESERVED_KEYS or key.startswith("__"):
            key = f"__{key}"
        cleaned[key] = value
    return cleaned


class Run:
    """A run being logged; `log()` only enqueues, a daemon thread commits batches."""

    def __init__(self, project: str, name: str, run_id: str, config: dict[str, Any],
                 writer: ProjectWriter, next_step: int, system_interval: float | None) -> None:
        self.project = project
        self.name = name
        self.id = run_id
        self.config = config
        self._writer = writer
        self._next_step = next_step
        self._lock = threading.Lock()
        self._metrics: list[MetricRow] = []
        self._system: list[SystemRow] = []
        self._config_pending = True
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._loop, name=f"trackio-flask-{name}",
                                        daemon=True)
        self._thread.start()
        self._sampler = None
        if system_interval:
            self._sampler = threading.Thread(target=self._sample_system, args=(system_interval,),
                                             name="trackio-flask-system", daemon=True)
            self._sampler.start()

    @property
    def next_step(self) -> int:
        """The step log() takes when given none (a resumed run: its last step plus one)."""
        with self._lock:
            return self._next_step

    def log(self, metrics: dict[str, Any], step: int | None = None,
            timestamp: float | None = None) -> None:
        """Queue one row of metrics; the step defaults to the previous one plus one.

        `timestamp` (seconds since the epoch) defaults to now; importers pass the original time.
        """
        if self._finished:
            raise RuntimeError("this run is finished; call init() for a new one")
        if not isinstance(metrics, dict):
            raise TypeError("log() takes a dict of metric name to value")
        stamp = time.time() if timestamp is None else float(timestamp)
        with self._lock:
            if step is None:
                step = self._next_step
            self._next_step = max(self._next_step, int(step) + 1)
            self._metrics.append(MetricRow(self.id, self.name, timestamps.to_iso(stamp), int(step),
                                           _clean_metrics(metrics), uuid.uuid4().hex))

    def log_system(self, metrics: dict[str, Any], timestamp: float | None = None) -> None:
        """Queue one row of system metrics (GPU, CPU, memory), stamped now unless given."""
        if self._finished:
            raise RuntimeError("this run is finished; call init() for a new one")
        stamp = time.time() if timestamp is None else float(timestamp)
        with self._lock:
            self._system.append(SystemRow(self.id, self.name, timestamps.to_iso(stamp), dict(metrics),
                                          uuid.uuid4().hex))

    def finish(self) -> None:
        """Flush everything queued and stop the background threads."""
        if self._finished:
            return
        self._finished = True
        self._stopped.set()
        self._wake.set()
        self._thread.join()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
        self._flush(final=True)
        self._writer.close()

    def _take(self) -> tuple[list[MetricRow], list[SystemRow], list[ConfigRow]]:
        with self._lock:
            metrics, self._metrics = self._metrics, []
            system, self._system = self._system, []
            configs = []
            # Like Trackio, the config row goes with the first batch that carries metrics.
            if self._config_pending and metrics:
                configs = [ConfigRow(self.id, self.name, self.config, timestamps.now_iso())]
                self._config_pending = False
        return metrics, system, configs

    def _flush(self, final: bool = False) -> None:
        metrics, system, configs = self._take()
        if not (metrics or system or configs):
            return
        for attempt in range(40 if final else 1):
            try:
                self._writer.write(metrics=metrics, system=system, configs=configs)
                return
            except DatabaseBusy:
                if final:
                    time.sleep(min(0.05 * (attempt + 1), 0.5))
        # Still locked: put the rows back so the next flush retries them (nothing is dropped).
        with self._lock:
            self._metrics[:0] = metrics
            self._system[:0] = system
            if configs:
                self._config_pending = True
        if final:
            logger.error("trackio_flask: database stayed locked; %d rows not written", len(metrics))

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(FLUSH_INTERVAL_S)
            if self._stopped.is_set():
                return
            try:
                self._flush()
            except Exception:  # keep logging alive; the rows stay queued
                logger.exception("trackio_flask: background write failed")

    def _sample_system(self, interval: float) -> None:
        import psutil

        psutil.cpu_percent(percpu=True)
        while not self._stopped.wait(interval):
            values: dict[str, float] = {}
            for index, percent in enumerate(psutil.cpu_percent(percpu=True)):
                values[f"cpu/{index}/utilization"] = percent
            memory = psutil.virtual_memory()
            values["memory/percent"] = memory.percent
            values["memory/used_gib"] = memory.used / 2**30
            values.update(_gpu_metrics())
            self.log_system(values)


def _gpu_metrics() -> dict[str, float]:
    """NVIDIA GPU utilisation and memory through nvidia-ml-py, when it and a GPU are present."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
    except Exception:
        return {}
    values = {}
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        values[f"gpu/{index}/utilization"] = float(rates.gpu)
        values[f"gpu/{index}/allocated_memory"] = memory.used / 2**30
    return values


_current: Run | None = None
_current_lock = threading.Lock()


def _data_dir(explicit: str | os.PathLike | None) -> Path:
    if explicit is not None:
        return Path(explicit).expanduser()
    return load_settings()["DATA_DIR"]


def init(project: str, name: str | None = None, config: dict[str, Any] | None = None,
         resume: str = "never", group: str | None = None, data_dir: str | None = None,
         log_system_metrics: bool = False, system_interval: float = 10.0) -> Run:
    """Start a run in `$TRACKIO_DIR/<project>.db` and make it the current one."""
    global _current
    storage.validate_project_name(project)
    if resume not in ("never", "allow", "must"):
        raise ValueError("resume must be 'never', 'allow' or 'must'")
    if resume == "must" and not name:
        raise ValueError("resume='must' needs the name of the run to resume")
    user_config = dict(config or {})
    for key in user_config:
        if str(key).startswith("_"):
            raise ValueError(f"config keys starting with '_' are reserved: {key!r}")
    settings = load_settings()
    directory = _data_dir(data_dir)
    writer = ProjectWriter(storage.db_path(directory, project), settings["SQLITE_JOURNAL_MODE"],
                           settings["BUSY_TIMEOUT_S"])
    if _current is not None:
        _current.finish()
    run_id = None
    next_step = 0
    if name and resume in ("allow", "must"):
        run_id = writer.latest_run_id(name)
        if run_id is None and resume == "must":
            writer.close()
            raise ValueError(f"no run named {name!r} in project {project!r} to resume")
        if run_id is not None:
            last = writer.last_step(run_id, name)
            next_step = 0 if last is None else last + 1
    if name is None:
        name = f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 999)}"
    full_config = {**user_config, "_Username": None,
                   "_Created": timestamps.now_iso(), "_Group": group}
    run = Run(project, name, run_id or uuid.uuid4().hex, full_config, writer, next_step,
              system_interval if log_system_metrics else None)
    with _current_lock:
        _current = run
    return run


def _require_run() -> Run:
    if _current is None:
        raise RuntimeError("call trackio_flask.init() before logging")
    return _current


def log(metrics: dict[str, Any], step: int | None = None) -> None:
    """Queue metrics for the current run."""
    _require_run().log(metrics, step)


def log_system(metrics: dict[str, Any]) -> None:
    """Queue system metrics for the current run."""
    _require_run().log_system(metrics)


def finish() -> None:
    """Flush and close the current run."""
    global _current
    with _current_lock:
        run, _current = _current, None
    if run is not None:
        run.finish()


atexit.register(finish)
