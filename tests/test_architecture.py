"""Layers you can see: storage, series, charts and the SDK never import Flask."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trackio_flask"
NO_FLASK = ["storage.py", "series.py", "charts.py", "live.py", "dashboard.py", "writer.py",
            "sdk.py", "settings.py", "demo.py"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", NO_FLASK)
def test_core_modules_do_not_import_web_frameworks(module):
    found = imported_modules(PACKAGE / module) & {"flask", "werkzeug", "flask_caching",
                                                  "flask_limiter", "jinja2"}
    assert not found, f"{module} imports {found}"


def test_importing_the_sdk_does_not_load_flask():
    code = "import sys, trackio_flask; print('flask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
