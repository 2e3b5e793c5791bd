"""Shared fixtures: a throwaway data dir, the app over it, and its test client."""

from __future__ import annotations

import sys
import time as real_time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from builders import ProjectDB  # noqa: E402
from trackio_pages_zoo import log_pages_zoo  # noqa: E402
from trackio_zoo import log_zoo  # noqa: E402

from trackio_flask import create_app  # noqa: E402


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "trackio"
    directory.mkdir()
    return directory


@pytest.fixture
def app(data_dir: Path):
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache", "TICK_S": 0,
                       "RATELIMIT_STORAGE_URI": "memory://"})


@pytest.fixture
def client(app):
    return app.test_client()


class FakeClock:
    """Stands in for the time module in the polling code: `now` is whatever the test says."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """Freeze the poll-interval clock just after the fixtures' last row (T0 + 50 s)."""
    from builders import T0

    from trackio_flask import polling

    fake = FakeClock(T0.timestamp() + 50)
    monkeypatch.setattr(polling, "time", fake)
    return fake


class FakeTime:
    """The `time` module with a clock the test moves (for the limiter and its Retry-After)."""

    def __init__(self) -> None:
        self.now = real_time.time()

    def time(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(real_time, name)


@pytest.fixture
def fake_time(monkeypatch):
    """Freeze the rate limiter's clock (its storage and the 429 handler read the same one)."""
    import limits.storage.memory

    import trackio_flask.app

    fake = FakeTime()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    monkeypatch.setattr(trackio_flask.app, "time", fake)
    return fake


@pytest.fixture
def project_db(data_dir: Path):
    """A current-schema project `p` with two runs; yields the open writer for more rows."""
    db = ProjectDB(data_dir / "p.db")
    db.config("alpha", {"lr": 0.1, "_Group": "g1"})
    db.config("beta", {"lr": 0.2, "_Group": "g2"})
    db.log_many("alpha", range(50), lambda s: {"train/loss": 1 / (s + 1), "eval/acc": s / 50})
    db.log_many("beta", range(30), lambda s: {"train/loss": 2 / (s + 1)})
    db.system("alpha", 0, {"cpu/utilization": 10.0})
    db.system("alpha", 5, {"cpu/utilization": 20.0})
    yield db
    db.close()


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory) -> Path:
    """A data dir holding project ZOO as trackio's own client logged it (tests/trackio_zoo.py);
    one per test module, so a module that logs more to it changes no other module's data."""
    data_dir = tmp_path_factory.mktemp("zoo")
    log_zoo(data_dir)
    return data_dir


@pytest.fixture(scope="module")
def pages_dir(tmp_path_factory) -> Path:
    """A data dir holding project PAGES (traces, artifacts, project files, 3D objects) as
    trackio's own client logged it (tests/trackio_pages_zoo.py); one per test module."""
    data_dir = tmp_path_factory.mktemp("pages")
    log_pages_zoo(data_dir)
    return data_dir


@pytest.fixture
def pages_client(pages_dir):
    """A test client over pages_dir (shared by its module: tests that log more copy it first)."""
    return create_app({"DATA_DIR": pages_dir, "TESTING": True, "CACHE_TYPE": "SimpleCache",
                       "TICK_S": 0, "RATELIMIT_STORAGE_URI": "memory://"}).test_client()
