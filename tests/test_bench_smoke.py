"""The benchmark harness itself runs end to end on tiny sizes (timings are not asserted)."""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTRA_TABLES = sorted(info.name for info in pkgutil.iter_modules([str(ROOT / "bench" / "tables")]))


def _quick_bench(tmp_path: Path, only: str) -> str:
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("CI"):
            pytest.fail("CI is set but /usr/bin/chromium is missing")
        pytest.skip("the harness measures first loads in Debian's chromium")
    out = tmp_path / "BENCHMARKS.md"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--only", only,
                           "--out", str(out), "--work", str(tmp_path / "work")], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return out.read_text()


@pytest.mark.slow
@pytest.mark.browser
def test_quick_benchmark_writes_the_seven_core_tables(tmp_path):
    report = _quick_bench(tmp_path, "core")
    for number in range(1, 8):
        assert re.search(rf"^### {number}\. ", report, re.M), f"table {number} missing"
    assert "trackio_flask | trackio | trackio ÷ ours" in report
    assert "python -m bench.run --quick" in report


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("name", EXTRA_TABLES)
def test_quick_benchmark_writes_each_extra_table(tmp_path, name):
    sys.path.insert(0, str(ROOT))
    module = __import__(f"bench.tables.{name}", fromlist=["NUMBER"])
    report = _quick_bench(tmp_path, name)
    assert re.search(rf"^### {module.NUMBER}\. ", report, re.M), f"table {module.NUMBER} missing"
