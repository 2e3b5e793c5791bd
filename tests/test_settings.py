"""Settings: one documented table, parsed strictly, failing loudly with the variable's name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trackio_flask import create_app
from trackio_flask.settings import SETTINGS, SettingError, load_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_documented_in_the_readme_table():
    text = README.read_text()
    for setting in SETTINGS:
        row = re.search(rf"^\| {setting.name} \| `{setting.env}` \|", text, re.MULTILINE)
        assert row, f"{setting.name} ({setting.env}) is missing from the README settings table"


def test_trackio_names_are_kept():
    envs = {s.name: s.env for s in SETTINGS}
    assert envs["DATA_DIR"] == "TRACKIO_DIR" and envs["WRITE_TOKEN"] == "TRACKIO_WRITE_TOKEN"


def test_defaults_then_environment_then_overrides():
    values = load_settings({"TRACKIO_DIR": "/data", "TRACKIO_FLASK_MAX_POINTS": "900"},
                           {"MAX_POINTS": 100})
    assert values["DATA_DIR"] == Path("/data") and values["MAX_POINTS"] == 100
    assert load_settings({})["DATA_DIR"] == Path("~/.cache/huggingface/trackio").expanduser()


@pytest.mark.parametrize("env,value", [("TRACKIO_FLASK_MAX_POINTS", "many"),
                                       ("TRACKIO_FLASK_MAX_POINTS", "-3"),
                                       ("TRACKIO_FLASK_POLL_LOCAL_S", "nan"),
                                       ("TRACKIO_FLASK_PROXY_HOPS", "99"),
                                       ("TRACKIO_SQLITE_JOURNAL_MODE", "MEMORY"),
                                       ("TRACKIO_FLASK_POLL_HF_S", "1")])
def test_bad_values_fail_with_the_variable_name(env, value):
    with pytest.raises(SettingError, match=env):
        load_settings({env: value})


def test_extension_settings_come_from_prefixed_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TRACKIO_FLASK_CACHE_DEFAULT_TIMEOUT", "42")
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path))
    app = create_app()
    assert app.config["CACHE_DEFAULT_TIMEOUT"] == 42
    assert app.config["DATA_DIR"] == tmp_path


def test_app_refuses_to_start_on_a_bad_value(monkeypatch):
    monkeypatch.setenv("TRACKIO_FLASK_MAX_BODY_MB", "lots")
    with pytest.raises(SettingError, match="TRACKIO_FLASK_MAX_BODY_MB"):
        create_app()
