"""Reading every Trackio schema era, read-only, with hostile names rejected before they hit the disk."""

from __future__ import annotations

import math
import sqlite3

import pytest
from builders import ProjectDB

from trackio_flask import storage
from trackio_flask.live import ProjectStore


def state_of(data_dir, project="p"):
    return ProjectStore(data_dir, 2**30).get(project)


@pytest.mark.parametrize("legacy", [False, True], ids=["run_id", "run_name_only"])
@pytest.mark.parametrize("as_text", [False, True], ids=["orjson_bytes", "json_text"])
def test_every_schema_era_and_encoding_reads_the_same_values(data_dir, legacy, as_text):
    db = ProjectDB(data_dir / "p.db", legacy=legacy, as_text=as_text)
    db.config("r", {"lr": 0.5})
    db.log("r", 0, {"loss": 1.5, "acc": "NaN", "up": "Infinity", "down": "-Infinity",
                    "nested": {"a": {"b": 2}}, "img": {"_type": "trackio.image", "file_path": "x"},
                    "flag": True, "note": "text"})
    db.log("r", 1, {"loss": 0.5})
    db.system("r", 3, {"gpu": {"0": {"util": 50}}})
    db.close()
    state = state_of(data_dir)
    run_key = "r" if legacy else "id-r"
    assert list(state.runs) == [run_key]
    columns = state.metrics[run_key]
    assert columns.column("loss").tolist() == [1.5, 0.5]
    assert math.isnan(columns.column("acc")[0])
    assert columns.column("up")[0] == math.inf and columns.column("down")[0] == -math.inf
    assert columns.column("nested/a/b")[0] == 2.0
    assert "img" not in state.metric_names and "flag" not in state.metric_names
    assert "note" not in state.metric_names
    assert state.system[run_key].column("gpu/0/util").tolist() == [50.0]
    assert state.configs[run_key] == {"lr": 0.5}


def test_runs_with_the_same_name_but_different_ids_stay_distinct(data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log("same", 0, {"x": 1}, run_id="a")
    db.log("same", 0, {"x": 2}, run_id="b", at=10)
    db.close()
    state = state_of(data_dir)
    assert sorted(state.runs) == ["a", "b"]
    assert [r.key for r in state.runs_newest_first()] == ["b", "a"]


def test_reader_never_writes_or_migrates_a_legacy_database(data_dir):
    db = ProjectDB(data_dir / "p.db", legacy=True, journal="DELETE")
    db.log("r", 0, {"x": 1})
    db.close()
    before = (data_dir / "p.db").read_bytes()
    state_of(data_dir)
    assert (data_dir / "p.db").read_bytes() == before
    conn = storage.open_readonly(data_dir / "p.db")
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("INSERT INTO metrics (timestamp, run_name, step, metrics) VALUES ('', '', 0, '')")
    conn.close()


def test_missing_project_is_not_created(data_dir):
    with pytest.raises(storage.ProjectNotFound):
        state_of(data_dir, "absent")
    assert not (data_dir / "absent.db").exists()


def test_empty_database_file_has_no_runs(data_dir):
    (data_dir / "p.db").touch()
    state = state_of(data_dir)
    assert state.runs == {} and state.metric_names == set()


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "/etc/passwd", "x\x00y", "%2e%2e", "a.b",
                                  "", "x" * 129, "ü"])
def test_project_names_that_could_escape_the_data_dir_are_rejected(data_dir, name):
    with pytest.raises(storage.InvalidProjectName):
        storage.db_path(data_dir, name)


def test_corrupt_and_foreign_files_are_listed_as_unreadable(data_dir, project_db):
    (data_dir / "broken.db").write_bytes(b"this is not sqlite" * 100)
    foreign = sqlite3.connect(data_dir / "other.db")
    foreign.execute("CREATE TABLE t (x)")
    foreign.close()
    listed = {p.name: p.error for p in storage.list_projects(data_dir)}
    assert listed["p"] is None
    assert "unreadable" in listed["broken"]
    assert "not a Trackio database" in listed["other"]


def test_registry_databases_are_not_projects(data_dir, project_db):
    sqlite3.connect(data_dir / "registry-models.db").close()
    assert [p.name for p in storage.list_projects(data_dir)] == ["p"]


def test_new_rows_are_read_incrementally(data_dir, project_db):
    store = ProjectStore(data_dir, 2**30)
    state = store.get("p")
    assert state.metrics["id-alpha"].length == 50
    project_db.log("alpha", 50, {"train/loss": 0.01})
    state = store.get("p")
    assert state.metrics["id-alpha"].length == 51
    assert store.loads == 1  # extended in place, not re-read


def test_deleted_or_renamed_runs_trigger_a_full_reload(data_dir, project_db):
    store = ProjectStore(data_dir, 2**30)
    store.get("p")
    project_db.conn.execute("DELETE FROM metrics WHERE run_name = 'beta'")
    state = store.get("p")
    assert "id-beta" not in state.runs
    for table in ("metrics", "configs", "system_metrics"):  # what a rename rewrites
        project_db.conn.execute(f"UPDATE {table} SET run_name = 'gamma' WHERE run_name = 'alpha'")
    state = store.get("p")
    assert state.runs["id-alpha"].name == "gamma"
    assert store.loads == 3


def test_memory_bound_evicts_least_recently_used_project(data_dir):
    for name in ("a", "b", "c"):
        db = ProjectDB(data_dir / f"{name}.db")
        db.log_many("r", range(2000), lambda s: {"m": float(s)})
        db.close()
    store = ProjectStore(data_dir, memory_bytes=100_000)
    store.get("a")
    store.get("b")
    store.get("c")
    assert store.peek("a") is None and store.peek("b") is None
    assert store.peek("c") is not None


def test_delete_racing_an_insert_is_caught_by_the_periodic_recount(data_dir, project_db,
                                                                    monkeypatch):
    from trackio_flask import live

    store = ProjectStore(data_dir, 2**30)
    store.get("p")
    project_db.conn.execute("BEGIN")
    project_db.conn.execute("DELETE FROM metrics WHERE run_name = 'beta'")
    project_db.log("alpha", 50, {"train/loss": 0.01})
    project_db.conn.execute("COMMIT")
    monkeypatch.setattr(live, "RECOUNT_S", 0.0)  # the recount is due
    state = store.get("p")
    assert "id-beta" not in state.runs and state.metrics["id-alpha"].length == 51
