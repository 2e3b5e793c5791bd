"""The project version changes on every committed write, and only then, whatever the clock does."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest
from builders import ProjectDB

from trackio_flask import storage


def freeze_mtimes(path, ns=1_700_000_000_000_000_000):
    for suffix in ("", "-wal", "-shm"):
        target = f"{path}{suffix}"
        if os.path.exists(target):
            os.utime(target, ns=(ns, ns))


@pytest.mark.parametrize("journal", ["WAL", "DELETE"])
def test_version_changes_on_each_commit_even_when_mtimes_collide(data_dir, journal):
    db = ProjectDB(data_dir / "p.db", journal=journal)
    db.log("r", 0, {"x": 1.0})
    path = data_dir / "p.db"
    seen = set()
    for step in range(1, 30):
        freeze_mtimes(path)
        before = storage.version(path)
        # Same-size update: the file size cannot give it away either.
        db.conn.execute("UPDATE metrics SET metrics = ? WHERE id = 1", (f'{{"x": {step % 10}}}',))
        freeze_mtimes(path)
        after = storage.version(path)
        assert after != before, f"commit {step} not seen in {journal} mode"
        seen.add(after)
    assert len(seen) >= 10
    db.close()


@pytest.mark.parametrize("journal", ["WAL", "DELETE"])
def test_version_is_stable_while_only_readers_touch_the_file(data_dir, journal):
    db = ProjectDB(data_dir / "p.db", journal=journal)
    db.log_many("r", range(100), lambda s: {"x": float(s)})
    path = data_dir / "p.db"
    first = storage.version(path)
    for _ in range(5):
        conn = storage.open_readonly(path)
        conn.execute("SELECT COUNT(*) FROM metrics").fetchall()
        conn.close()
        assert storage.version(path) == first
    db.close()


def test_version_changes_when_the_file_is_replaced_by_a_copy(data_dir, tmp_path):
    db = ProjectDB(data_dir / "p.db", journal="DELETE")
    db.log("r", 0, {"x": 1.0})
    db.close()
    other = ProjectDB(tmp_path / "other.db", journal="DELETE")
    for step in range(3):  # a different history: its header's change counter differs
        other.log("r", step, {"x": 2.0})
    other.close()
    path = data_dir / "p.db"
    freeze_mtimes(path)
    before = storage.version(path)
    shutil.copy(tmp_path / "other.db", path)  # same inode, same size
    freeze_mtimes(path)
    assert storage.version(path) != before
    os.replace(tmp_path / "other.db", path)  # new inode
    assert storage.version(path) != before


def test_version_changes_after_checkpoint_and_wal_restart(data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log_many("r", range(200), lambda s: {"x": float(s)})
    path = data_dir / "p.db"
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    versions = [storage.version(path)]
    for step in range(200, 205):
        freeze_mtimes(path)
        db.log("r", step, {"x": 1.0})
        freeze_mtimes(path)
        versions.append(storage.version(path))
    assert len(set(versions)) == len(versions)
    db.close()


def test_unreadable_file_raises_a_storage_error(data_dir):
    (data_dir / "p.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(storage.UnreadableDatabase):
        storage.open_readonly(data_dir / "p.db")
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(data_dir / "p.db").execute("SELECT 1 FROM sqlite_master").fetchall()
