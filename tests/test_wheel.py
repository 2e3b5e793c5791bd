"""The wheel carries templates/ and static/: install it into a fresh venv and render a page."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_installed_wheel_renders_a_page(tmp_path, data_dir, project_db):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(dist), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("trackio_flask-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=600)
    script = textwrap.dedent(f"""
        import trackio_flask, pathlib
        app = trackio_flask.create_app({{"DATA_DIR": {str(data_dir)!r}}})
        assert pathlib.Path(trackio_flask.__file__).is_relative_to({str(env_dir)!r}), trackio_flask.__file__
        client = app.test_client()
        page = client.get("/projects/p")
        assert page.status_code == 200 and b'class="panel"' in page.data
        assert client.get("/static/vendor/htmx-2.0.11.min.js").status_code == 200
        assert client.get("/static/app.js").status_code == 200
        print("ok", app.template_folder)
    """)
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok") and str(env_dir) in done.stdout
