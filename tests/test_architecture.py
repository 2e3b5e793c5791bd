"""Layers you can see: the core never imports Flask, and requests flow downward only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trackio_flask"
NO_FLASK = ["storage.py", "series.py", "charts.py", "live.py", "dashboard.py", "writer.py",
            "sdk.py", "settings.py", "demo.py", "timestamps.py", "locks.py", "ingest.py",
            "trackio_api.py", "trackio_reads.py", "media.py", "artifacts.py", "rich.py",
            "compare.py", "gallery.py", "histograms.py", "reports.py", "traces.py", "lineage.py",
            "store/__init__.py", "store/series_store.py", "store/manifest.py",
            "store/arrow_files.py", "store/location.py",
            "store/pyramid.py",
            "chart_image.py", "image_render.py", "badges.py",
            "selection.py", "runs_table.py",
            "groups.py", "sweep.py",
            "mapped_pages.py", "history_chunks.py", "history_client.py"]
VIEWS = sorted(p.name for p in (PACKAGE / "views").glob("*.py") if p.name != "__init__.py")


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


def package_imports(path: Path) -> set[str]:
    """Modules of trackio_flask that `path` imports, as dotted names below the package."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]  # e.g. trackio_flask.views
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level + 1])
            elif node.module and node.module.startswith("trackio_flask"):
                base = []
            else:
                continue
            module = ".".join(base + ([node.module] if node.module else []))
            names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("trackio_flask"))
    return {name.removeprefix("trackio_flask.") for name in found}


@pytest.mark.parametrize("view", VIEWS)
def test_views_import_neither_the_app_nor_another_view(view):
    imported = package_imports(PACKAGE / "views" / view)
    assert "app" not in imported, f"views/{view} imports the app module (import a service instead)"
    others = {name for name in imported if name.startswith("views")}
    assert not others, f"views/{view} imports another view: {others}"


@pytest.mark.parametrize("module", NO_FLASK + ["extensions.py", "rendering.py", "auth.py"])
def test_nothing_below_the_views_imports_them(module):
    imported = package_imports(PACKAGE / module)
    assert not {name for name in imported if name.startswith("views") or name == "app"}


def test_package_imports_sees_relative_imports():
    # The checks above are only as good as the import parser: prove it on a known module.
    assert "extensions" in package_imports(PACKAGE / "views" / "pages.py")
