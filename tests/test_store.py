"""The series store (#20): counted SQLite reads prove what a restart, a second worker, a
rewrite and a crash cost, and every state read from the store equals one decoded from SQLite."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.builders import ProjectDB
from tests.helpers import PACKAGE_ROOT, run_child
from trackio_flask.live import ProjectStore
from trackio_flask.store import SeriesStore, location, open_store

ROWS = 400


def make_project(data_dir: Path, name: str = "p") -> ProjectDB:
    """Two runs (ids interleaved as a trainer writes them), a system sample, an image."""
    db = ProjectDB(data_dir / f"{name}.db")
    for run in ("alpha", "beta"):
        db.config(run, {"lr": 0.1})
    db.conn.execute("BEGIN")
    for step in range(ROWS // 2):
        for run in ("alpha", "beta"):
            values = {"loss": 1.0 / (step + 1), "acc": step * 0.01}
            if step % 50 == 0:
                values["val/loss"] = float("nan") if step == 100 else step * 0.5
                values["sample"] = {"_type": "trackio.image", "file_path": "x.png"}
            db.log(run, step, values)
    db.conn.execute("COMMIT")
    db.system("alpha", 0.5, {"gpu/0/util": 50})
    return db


def store_at(root: Path, **options) -> SeriesStore:
    return SeriesStore(root, 2**30, **options)


def decoded(data_dir: Path, project: str = "p"):
    """The state as read from SQLite alone, the reference every store read must equal."""
    return ProjectStore(data_dir, 2**30).get(project)


def assert_same(state, reference) -> None:
    assert {k: r.name for k, r in state.runs.items()} == \
        {k: r.name for k, r in reference.runs.items()}
    for table in ("metrics", "system"):
        ours, theirs = getattr(state, table), getattr(reference, table)
        assert ours.keys() == theirs.keys()
        for key, columns in theirs.items():
            got = ours[key]
            assert got.length == columns.length and set(got.metrics) == set(columns.metrics)
            for attr in ("ids", "steps", "times"):
                np.testing.assert_array_equal(getattr(got, attr)[:got.length],
                                              getattr(columns, attr)[:columns.length])
            for name in columns.metrics:
                # Byte-equal: a logged NaN keeps its payload (charts mark it) through the store.
                assert got.column(name).tobytes() == columns.column(name).tobytes(), name
            assert got.finite == columns.finite
    assert state.rich == reference.rich
    assert state.metric_names == reference.metric_names
    assert state.system_names == reference.system_names
    assert (state.metric_cursor, state.metric_rows) == \
        (reference.metric_cursor, reference.metric_rows)


def test_a_restart_reads_only_the_rows_past_the_watermark(tmp_path):
    db = make_project(tmp_path)
    root = tmp_path / "store"
    first = ProjectStore(tmp_path, 2**30, store_at(root))
    first.get("p")
    assert first.rows_read == ROWS + 1 and first.series_store.builds == 1
    for step in range(200, 230):
        db.log("alpha", step, {"loss": 0.5, "new/metric": step})
    restarted = ProjectStore(tmp_path, 2**30, store_at(root))
    state = restarted.get("p")
    assert restarted.rows_read == 30, "a restart decodes only the rows logged after the store"
    assert restarted.series_store.builds == 0 and restarted.series_store.restores == 1
    assert_same(state, decoded(tmp_path))
    # Both runs are the mapped files, not private copies: alpha's 30 new rows went into its
    # file's room; only its new metric is held in private memory until the next write.
    assert state.metrics["id-beta"].shared and state.metrics["id-beta"].nbytes == 0
    assert state.metrics["id-alpha"].shared
    assert state.metrics["id-alpha"].private_metrics == {"new/metric"}


def run_files(store: SeriesStore, db: ProjectDB) -> dict[str, str]:
    manifest = json.loads((store.folder("p", db.path) / "manifest.json").read_bytes())
    return {key: entry["file"] for key, entry in manifest["metrics"].items()}


def test_live_ticks_commit_in_place_and_a_new_metric_rewrites_one_run(tmp_path):
    db = make_project(tmp_path)
    root = tmp_path / "store"
    live = ProjectStore(tmp_path, 2**30, store_at(root, append_rows=1))
    live.get("p")
    store = live.series_store
    files, written = run_files(store, db), store.rewrites
    assert all(c.shared for c in live.peek("p").metrics.values()), \
        "the building worker maps what it wrote instead of keeping its decoded copy"
    for tick in range(6):
        before = live.rows_read
        for step in range(1000 + tick * 5, 1005 + tick * 5):
            db.log("beta", step, {"loss": step / 7})
        live.get("p")
        assert live.rows_read - before == 5, "a tick decodes only its new rows"
    assert store.appends == 6 and store.rewrites == written, \
        "the rows went into the files' room: no file was written again"
    assert run_files(store, db) == files
    db.log("beta", 2000, {"loss": 1.0, "brand/new": 2.0})
    live.get("p")
    after = run_files(store, db)
    assert after["id-alpha"] == files["id-alpha"] and after["id-beta"] != files["id-beta"], \
        "a new metric name rewrites its run's file only"
    for step in range(3000, 3400):  # past beta's room
        db.log("beta", step, {"loss": 0.25})
    live.get("p")
    assert run_files(store, db)["id-alpha"] == files["id-alpha"]
    runs = {*run_files(store, db).values(), *json_system_files(store, db)}
    manifest = json.loads((store.folder("p", db.path) / "manifest.json").read_bytes())
    pyramids = {entry["pyramid"] for table in ("metrics", "system")
                for entry in manifest[table].values() if entry["pyramid"]}
    assert sorted(p.name for p in store.folder("p", db.path).glob("*.arrow")) == \
        sorted({*runs, *pyramids,
                *(p.name for p in store.folder("p", db.path).glob("rich-*.arrow"))}), \
        "replaced files (and their pyramids) are deleted"
    restarted = ProjectStore(tmp_path, 2**30, store_at(root))
    assert_same(restarted.get("p"), decoded(tmp_path))
    assert restarted.rows_read == 0


def json_system_files(store: SeriesStore, db: ProjectDB) -> set[str]:
    manifest = json.loads((store.folder("p", db.path) / "manifest.json").read_bytes())
    return {entry["file"] for entry in manifest["system"].values()}


TWO_WORKERS = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from trackio_flask.live import ProjectStore
    from trackio_flask.store import SeriesStore
    data, me = Path(sys.argv[1]), sys.argv[2]
    (data / f"ready-{me}").touch()
    while len(list(data.glob("ready-*"))) < 2:  # start together: both want the store at once
        time.sleep(0.01)
    store = SeriesStore(data / "store", 2**30)
    projects = ProjectStore(data, 2**30, store)
    state = projects.get("p")
    while state.building:  # the other one builds: answered with its part, asked again
        time.sleep(0.01)
        state = projects.get("p")
    print(json.dumps({"rows": projects.rows_read, "builds": store.builds,
                      "restores": store.restores, "runs": sorted(state.runs)}))
""")


def test_two_workers_starting_together_build_the_store_once(tmp_path):
    make_project(tmp_path).close()
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    children = [subprocess.Popen([sys.executable, "-c", TWO_WORKERS, str(tmp_path), str(i)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env) for i in range(2)]
    answers = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        answers.append(json.loads(out))
    assert sorted(a["builds"] for a in answers) == [0, 1]
    assert sorted(a["rows"] for a in answers) == [0, ROWS + 1], \
        "the second worker is answered from the first one's build and decodes nothing"
    assert answers[0]["runs"] == answers[1]["runs"] == ["id-alpha", "id-beta"]


def test_a_renamed_run_invalidates_the_store(tmp_path):
    db = make_project(tmp_path)
    root = tmp_path / "store"
    live = ProjectStore(tmp_path, 2**30, store_at(root))
    live.get("p")
    for table in ("metrics", "configs", "system_metrics"):
        db.conn.execute(f"UPDATE {table} SET run_name = 'renamed' WHERE run_id = 'id-beta'")
    state = live.get("p")
    assert state.runs["id-beta"].name == "renamed"
    assert live.series_store.builds == 2, "the running worker rebuilt the store"
    restarted = ProjectStore(tmp_path, 2**30, store_at(root))
    state = restarted.get("p")
    assert state.runs["id-beta"].name == "renamed" and restarted.rows_read == 0
    assert_same(state, decoded(tmp_path))


def test_a_rename_while_no_worker_runs_is_found_at_the_restart(tmp_path):
    db = make_project(tmp_path)
    root = tmp_path / "store"
    ProjectStore(tmp_path, 2**30, store_at(root)).get("p")
    for table in ("metrics", "configs", "system_metrics"):
        db.conn.execute(f"UPDATE {table} SET run_name = 'renamed' WHERE run_id = 'id-alpha'")
    restarted = ProjectStore(tmp_path, 2**30, store_at(root))
    state = restarted.get("p")
    assert state.runs["id-alpha"].name == "renamed"
    assert restarted.series_store.builds == 1
    assert_same(state, decoded(tmp_path))


@pytest.mark.parametrize("run", ["id-alpha", "id-beta"])  # beta holds the watermark row
def test_a_deleted_run_invalidates_the_store(tmp_path, run):
    db = make_project(tmp_path)
    root = tmp_path / "store"
    ProjectStore(tmp_path, 2**30, store_at(root)).get("p")
    for table in ("metrics", "configs", "system_metrics"):
        db.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run,))
    restarted = ProjectStore(tmp_path, 2**30, store_at(root))
    state = restarted.get("p")
    assert run not in state.runs and run not in state.metrics
    assert restarted.series_store.builds == 1
    assert_same(state, decoded(tmp_path))


def test_a_replaced_database_file_invalidates_the_store(tmp_path):
    make_project(tmp_path).close()
    root = tmp_path / "store"
    ProjectStore(tmp_path, 2**30, store_at(root)).get("p")
    other = tmp_path / "other"
    other.mkdir()
    db = ProjectDB(other / "p.db", journal="DELETE")
    db.log("gamma", 1, {"loss": 3.0})
    db.close()
    os.replace(other / "p.db", tmp_path / "p.db")
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"p.db{suffix}").unlink(missing_ok=True)
    restarted = ProjectStore(tmp_path, 2**30, store_at(root))
    state = restarted.get("p")
    assert list(state.runs) == ["id-gamma"] and restarted.series_store.builds == 1


KILLED = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from trackio_flask.live import ProjectStore
    from trackio_flask.store import SeriesStore, arrow_files, manifest
    data, where = Path(sys.argv[1]), sys.argv[2]
    if where == "file":  # killed after the new file of the run that logged a new metric
        real = arrow_files.write_columns
        def write_columns(*args):
            real(*args)
            os.kill(os.getpid(), signal.SIGKILL)
        arrow_files.write_columns = write_columns
    else:  # killed after the new manifest is written, before it is renamed into place
        def replace(*args):
            os.kill(os.getpid(), signal.SIGKILL)
        manifest.os.replace = replace
    ProjectStore(data, 2**30, SeriesStore(data / "store", 2**30, append_rows=1)).get("p")
""")


@pytest.mark.parametrize("where", ["file", "manifest"])
def test_a_sigkill_mid_append_leaves_a_store_that_validates(tmp_path, where):
    db = make_project(tmp_path)
    root = tmp_path / "store"
    ProjectStore(tmp_path, 2**30, store_at(root)).get("p")
    for step in range(500, 520):
        db.log("alpha", step, {"loss": 2.0, "fresh": 1.0})  # a new name: alpha's file is rewritten
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)}
    done = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path), where],
                          capture_output=True, timeout=120, env=env)
    assert done.returncode == -9, done.stderr[-2000:]
    restarted = ProjectStore(tmp_path, 2**30, store_at(root, append_rows=1))
    state = restarted.get("p")
    store = restarted.series_store
    assert store.builds == 0 and restarted.rows_read == 20, \
        "the old manifest still validates: only the 20 rows past it are decoded again"
    assert_same(state, decoded(tmp_path))
    folder = store.folder("p", db.path)
    manifest = json.loads((folder / "manifest.json").read_bytes())
    named = {e[kind] for table in ("metrics", "system") for e in manifest[table].values()
             for kind in ("file", "pyramid")}
    named |= {e["file"] for e in manifest["rich"]}
    leftovers = {p.name for p in folder.iterdir()} - named - {"manifest.json", "lock"}
    assert leftovers == set(), "the next writer removed what the killed one left"


def test_a_torn_segment_file_means_a_rebuild(tmp_path):
    make_project(tmp_path).close()
    root = tmp_path / "store"
    ProjectStore(tmp_path, 2**30, store_at(root)).get("p")
    folder = next(root.iterdir())
    victim = next(p for p in folder.glob("*.arrow") if not p.name.startswith("rich-"))
    victim.write_bytes(victim.read_bytes()[:100])
    restarted = ProjectStore(tmp_path, 2**30, store_at(root))
    state = restarted.get("p")
    assert restarted.series_store.builds == 1
    assert_same(state, decoded(tmp_path))


def test_the_size_cap_deletes_old_projects_then_serves_from_memory(tmp_path):
    make_project(tmp_path, "old").close()
    make_project(tmp_path, "new").close()
    root = tmp_path / "store"
    roomy = ProjectStore(tmp_path, 2**30, store_at(root))
    roomy.get("old")
    one = location.folder_bytes(root)
    capped = ProjectStore(tmp_path, 2**30, SeriesStore(root, int(one * 1.5)))
    capped.get("new")
    assert [p.name.split("-")[0] for p in root.iterdir()] == ["new"], \
        "the least recently written project made room"
    tiny = ProjectStore(tmp_path, 2**30, SeriesStore(root, 1000))
    state = tiny.get("old")
    assert list(root.iterdir()) == [] and state.store_generation == ""
    assert_same(state, decoded(tmp_path, "old"))


def test_a_read_only_data_folder_puts_the_store_in_the_xdg_cache(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    make_project(data).close()
    (data / ".trackio_flask").write_text("a file where the store folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    store = open_store(data, None, 100)
    assert store is not None and store.root.is_relative_to(tmp_path / "xdg")
    assert_same(ProjectStore(data, 2**30, store).get("p"), decoded(data))


def test_no_writable_store_folder_serves_from_sqlite(tmp_path):
    make_project(tmp_path).close()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    assert open_store(tmp_path, blocker / "store", 100) is None
    assert open_store(tmp_path, None, 0) is None, "a cap of 0 switches the store off"


def test_the_database_is_only_ever_opened_read_only(tmp_path):
    """The store reads through storage.open_readonly: a database whose file is read-only
    (and in DELETE mode, so no -shm is needed) builds and restores."""
    db = ProjectDB(tmp_path / "p.db", journal="DELETE")
    db.log("solo", 1, {"loss": 1.0})
    db.close()
    code = textwrap.dedent(f"""
        import sqlite3
        from pathlib import Path
        from trackio_flask.live import ProjectStore
        from trackio_flask.store import SeriesStore
        real = sqlite3.connect
        def connect(target, *a, **k):
            assert "mode=ro" in str(target), target  # nothing here may open it writable
            return real(target, *a, **k)
        sqlite3.connect = connect
        for _ in range(2):
            p = ProjectStore(Path({str(tmp_path)!r}), 2**30,
                             SeriesStore(Path({str(tmp_path)!r}) / "store", 2**30))
            print(sorted(p.get("p").runs), p.rows_read)
    """)
    assert run_child(code, 120, "read-only build").split("\n")[:2] == \
        ["['id-solo'] 1", "['id-solo'] 0"]
    assert sqlite3.connect(tmp_path / "p.db").execute("PRAGMA journal_mode").fetchone() == \
        ("delete",)


def test_the_app_serves_a_restart_from_the_store_it_built(tmp_path):
    """Through the app as configured: the first app builds the store in the folder setting
    names; a second app (a restarted worker) answers the same series without decoding."""
    from trackio_flask.app import create_app

    data = tmp_path / "data"
    data.mkdir()
    make_project(data).close()
    config = {"DATA_DIR": data, "TESTING": True, "CACHE_TYPE": "SimpleCache", "TICK_S": 0,
              "RATELIMIT_STORAGE_URI": "memory://", "SERIES_STORE_DIR": tmp_path / "series"}
    answers = []
    for _ in range(2):
        app = create_app(config)
        client = app.test_client()
        assert client.get("/projects/p").status_code == 200
        answers.append(client.get("/projects/p/series?xmin=10&xmax=120").get_json())
        projects = app.extensions["trackio_store"]
    assert list((tmp_path / "series").glob("p-*/manifest.json")), "built where the setting says"
    assert projects.rows_read == 0 and projects.series_store.restores == 1
    assert answers[0] == answers[1] and answers[0]["panels"]


def test_a_missing_data_folder_is_not_created_for_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    store = open_store(tmp_path / "typo", None, 100)
    assert not (tmp_path / "typo").exists()
    assert store is not None and store.root.is_relative_to(tmp_path / "xdg")


def test_a_project_of_more_runs_than_the_soft_open_file_limit_is_served(tmp_path):
    """Each mapped run file holds a file descriptor; a container's soft limit is often 1,024
    while its hard limit is far higher, so the store raises the soft one before mapping."""
    db = ProjectDB(tmp_path / "p.db")
    db.conn.execute("BEGIN")
    for run in range(400):
        for step in range(3):
            db.log(f"r{run}", step, {"loss": 1.0 / (step + 1)})
    db.conn.execute("COMMIT")
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "from trackio_flask.live import ProjectStore\n"
        "from trackio_flask.store import SeriesStore\n"
        "data = Path(sys.argv[1])\n"
        "for _ in range(2):  # a build, then a restart mapping every run's file\n"
        "    live = ProjectStore(data, 2**30, SeriesStore(data / 'store', 2**30))\n"
        "    state = live.get('p')\n"
        "print('served', len(state.metrics), 'restored', live.series_store.restores)\n")
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    # Restored from the store, not decoded again: the build could write and map every file.
    assert "served 400 restored 1" in done.stdout, done.stderr[-2000:]
