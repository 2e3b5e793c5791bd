"""The logging SDK: enqueue only, background commits, nothing lost, Trackio's schema."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import trackio_flask as tf
from trackio_flask import writer


def count(path, table="metrics"):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def no_leftover_run():
    yield
    tf.finish()


def test_log_never_writes_on_the_callers_thread(data_dir, monkeypatch):
    callers = []
    original = writer.ProjectWriter.write

    def spy(self, **kwargs):
        callers.append(threading.current_thread().name)
        return original(self, **kwargs)

    monkeypatch.setattr(writer.ProjectWriter, "write", spy)
    tf.init(project="p", name="r", data_dir=data_dir)
    main = threading.current_thread().name
    for step in range(2000):
        tf.log({"loss": 1.0 / (step + 1)})
    assert main not in callers
    deadline = time.time() + 5
    while count(data_dir / "p.db") < 2000 and time.time() < deadline:
        time.sleep(0.05)
    assert count(data_dir / "p.db") == 2000
    assert callers and all(name.startswith("trackio-flask-") for name in callers)


def test_background_writer_commits_while_the_run_is_open(data_dir):
    tf.init(project="p", name="r", data_dir=data_dir)
    tf.log({"loss": 1.0})
    deadline = time.time() + 3
    while count(data_dir / "p.db") == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert count(data_dir / "p.db") == 1


def test_finish_flushes_everything_in_trackios_schema(data_dir):
    run = tf.init(project="p", name="r", data_dir=data_dir, config={"lr": 0.1}, group="g")
    for step in range(5000):
        tf.log({"train/loss": 1.0 / (step + 1), "step": step})
    tf.log_system({"cpu/0/utilization": 12.5})
    tf.finish()
    conn = sqlite3.connect(data_dir / "p.db")
    assert conn.execute("SELECT COUNT(*), MIN(step), MAX(step) FROM metrics").fetchone() == (5000, 0, 4999)
    assert conn.execute("SELECT COUNT(DISTINCT log_id) FROM metrics").fetchone()[0] == 5000
    assert conn.execute("SELECT run_id, run_name FROM configs").fetchone() == (run.id, "r")
    assert conn.execute("SELECT COUNT(*) FROM system_metrics").fetchone()[0] == 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == writer.TRACKIO_SCHEMA_VERSION
    row = conn.execute("SELECT metrics FROM metrics WHERE step = 3").fetchone()[0]
    assert b'"__step":3' in row  # reserved names are renamed, as Trackio does
    assert run.config["lr"] == 0.1 and run.config["_Group"] == "g"


def test_interpreter_exit_flushes_without_finish(data_dir):
    script = textwrap.dedent(f"""
        import trackio_flask as tf
        tf.init(project="p", name="r", data_dir={str(data_dir)!r})
        for step in range(3000):
            tf.log({{"x": step}})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert count(data_dir / "p.db") == 3000


def test_replayed_batch_is_stored_once(data_dir):
    project = writer.ProjectWriter(data_dir / "p.db")
    rows = [writer.MetricRow("id", "r", "2026-01-01T00:00:00+00:00", s, {"x": s}, f"log-{s}")
            for s in range(10)]
    assert project.write(metrics=rows) == 10
    assert project.write(metrics=rows) == 0
    project.close()
    assert count(data_dir / "p.db") == 10


def test_resume_allow_continues_the_same_run_and_steps(data_dir):
    first = tf.init(project="p", name="r", data_dir=data_dir)
    for _ in range(5):
        tf.log({"x": 1})
    tf.finish()
    again = tf.init(project="p", name="r", data_dir=data_dir, resume="allow")
    tf.log({"x": 2})
    tf.finish()
    assert again.id == first.id
    conn = sqlite3.connect(data_dir / "p.db")
    assert conn.execute("SELECT MAX(step), COUNT(DISTINCT run_id) FROM metrics").fetchone() == (5, 1)


def test_resume_must_without_such_run_is_an_error(data_dir):
    with pytest.raises(ValueError, match="no run named"):
        tf.init(project="p", name="ghost", data_dir=data_dir, resume="must")


def test_resume_never_starts_a_new_run_even_with_the_same_name(data_dir):
    a = tf.init(project="p", name="r", data_dir=data_dir)
    tf.log({"x": 1})
    tf.finish()
    b = tf.init(project="p", name="r", data_dir=data_dir)
    assert a.id != b.id


@pytest.mark.parametrize("bad", [{"_secret": 1}, {"_Group": "x"}])
def test_underscore_config_keys_are_reserved(data_dir, bad):
    with pytest.raises(ValueError, match="reserved"):
        tf.init(project="p", data_dir=data_dir, config=bad)


def test_hostile_project_name_is_rejected(data_dir):
    with pytest.raises(ValueError):
        tf.init(project="../escape", data_dir=data_dir)
    assert list(data_dir.parent.glob("escape*")) == []


def test_rows_wait_out_a_locked_database_and_are_not_dropped(data_dir, monkeypatch):
    monkeypatch.setenv("TRACKIO_FLASK_BUSY_TIMEOUT_S", "0.2")
    tf.init(project="p", name="r", data_dir=data_dir)
    tf.log({"x": 0})
    tf.finish()
    blocker = sqlite3.connect(data_dir / "p.db", isolation_level=None)
    tf.init(project="p", name="r2", data_dir=data_dir)
    blocker.execute("BEGIN EXCLUSIVE")
    for step in range(100):
        tf.log({"x": step})
    time.sleep(1.2)  # several flush attempts hit the lock
    blocker.execute("COMMIT")
    blocker.close()
    tf.finish()
    assert count(data_dir / "p.db") == 101


def test_unserialisable_values_are_stored_as_text_not_dropped(data_dir):
    class Opaque:
        def __str__(self):
            return "opaque"

    tf.init(project="p", name="r", data_dir=data_dir)
    tf.log({"x": 1.0, "thing": Opaque(), "nan": float("nan")})
    tf.finish()
    row = sqlite3.connect(data_dir / "p.db").execute("SELECT metrics FROM metrics").fetchone()[0]
    assert b'"thing":"opaque"' in row and b'"nan":"NaN"' in row


def test_writer_killed_mid_batch_leaves_an_intact_readable_database(data_dir):
    script = textwrap.dedent(f"""
        import sys, trackio_flask as tf
        tf.init(project="p", name="r", data_dir={str(data_dir)!r})
        print("ready", flush=True)
        step = 0
        while True:
            tf.log({{"x": step, "y": [step] * 50}})
            step += 1
    """)
    from trackio_flask.live import ProjectStore

    store = ProjectStore(data_dir, 2**30)
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.4 + attempt * 0.37)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        conn = sqlite3.connect(data_dir / "p.db")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        state = store.get("p")
        assert sum(c.length for c in state.metrics.values()) == count(data_dir / "p.db")


def test_system_metrics_are_sampled_in_the_background(data_dir):
    tf.init(project="p", name="r", data_dir=data_dir, log_system_metrics=True,
            system_interval=0.1)
    tf.log({"x": 1})
    time.sleep(0.6)
    tf.finish()
    conn = sqlite3.connect(data_dir / "p.db")
    rows = conn.execute("SELECT CAST(metrics AS TEXT) FROM system_metrics").fetchall()
    assert len(rows) >= 2
    assert '"memory/percent"' in rows[0][0] and '"cpu/0/utilization"' in rows[0][0]
