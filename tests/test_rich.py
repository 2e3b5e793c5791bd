"""Where rich values and alerts were logged is caught up with the rest of a project; the values
themselves are read by row id, a page at a time."""

from __future__ import annotations

import pytest
from builders import ProjectDB, stamp

from trackio_flask.live import ProjectStore
from trackio_flask.rich import load_values, lookup, refs_of

IMAGE = {"_type": "trackio.image", "file_path": "p/a/0/x.png", "caption": "c"}
TABLE = {"_type": "trackio.table", "_value": [{"a": 1}]}


@pytest.mark.parametrize("payload,key,expected", [
    ({"a/b": 1}, "a/b", 1),
    ({"a": {"b": 2}}, "a/b", 2),
    ({"a": {"b/c": 3}}, "a/b/c", 3),
    ({"a/b": {"c": 4}}, "a/b/c", 4),
    ({"a": {"_type": "x", "b": 5}}, "a/b", None),  # a rich value is a leaf, not a folder
    ({"x": 1}, "a/b", None),
])
def test_lookup_finds_flat_and_nested_keys(payload, key, expected):
    assert lookup(payload, key) == expected


def test_rich_values_and_alerts_are_caught_up_incrementally(data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log("a", 0, {"loss": 1.0, "samples": {"image": IMAGE}, "preds": TABLE})
    db.log("a", 1, {"loss": 0.5, "gallery": [IMAGE, IMAGE]})
    store = ProjectStore(data_dir, 2**30)
    state = store.get("p")
    assert [(r.key, r.kind, r.step) for r in state.rich] == [
        ("samples/image", "trackio.image", 0.0), ("preds", "trackio.table", 0.0),
        ("gallery", "trackio.image", 1.0)]
    assert state.metric_names == {"loss"}  # rich values are no line charts
    db.conn.execute("INSERT INTO alerts (run_id, timestamp, run_name, title, text, level, step) "
                    "VALUES ('id-a', ?, 'a', 'spike', NULL, 'error', 1)", (stamp(2),))
    db.log("a", 2, {"preds": TABLE})
    state = store.get("p")
    assert [r.step for r in refs_of(state, ["trackio.table"])] == [0.0, 2.0]
    assert [(a.run_name, a.title, a.text, a.level, a.step) for a in state.alerts] == [
        ("a", "spike", "", "error", 1.0)]
    values = load_values(state.path, state.schema, refs_of(state, ["trackio.image"]))
    assert [value for _, value in values] == [IMAGE, [IMAGE, IMAGE]]
    db.conn.execute("DELETE FROM metrics WHERE step = 1")
    db.close()
    gone = load_values(state.path, state.schema, [state.rich[2]])  # a ref taken before the delete
    assert gone == [(state.rich[2], None)]


def test_a_file_without_an_alerts_table_has_no_alerts(data_dir):
    db = ProjectDB(data_dir / "old.db", legacy=True)
    db.log("a", 0, {"loss": 1.0, "img": IMAGE})
    db.close()
    state = ProjectStore(data_dir, 2**30).get("old")
    assert state.alerts == [] and [r.kind for r in state.rich] == ["trackio.image"]


def test_derived_values_are_computed_once_per_version_and_bounded(data_dir):
    db = ProjectDB(data_dir / "p.db")
    db.log("a", 0, {"img": IMAGE, "preds": TABLE})
    store = ProjectStore(data_dir, 2**30)
    state = store.get("p")
    computed = []
    count = lambda s: computed.append(1) or len(s.rich)  # noqa: E731
    assert [state.derived("n", count) for _ in range(3)] == [2, 2, 2] and len(computed) == 1
    assert [r.kind for r in refs_of(state, ["trackio.table", "trackio.image"])] == [
        "trackio.image", "trackio.table"]  # logging order, whatever order the kinds come in
    db.log("a", 1, {"img": IMAGE})
    db.close()
    state = store.get("p")
    assert state.derived("n", count) == 3 and len(computed) == 2
    for key in range(100):  # keys naming selections cannot grow a version's memo unbounded
        state.derived(key, count)
    assert len(state._derived) <= 32
