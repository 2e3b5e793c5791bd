"""The benchmark harness itself runs end to end on tiny sizes (timings are not asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.browser
def test_quick_benchmark_writes_all_seven_tables(tmp_path):
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("CI"):
            pytest.fail("CI is set but /usr/bin/chromium is missing")
        pytest.skip("the harness measures first loads in Debian's chromium")
    out = tmp_path / "BENCHMARKS.md"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(out),
                           "--work", str(tmp_path / "work")], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = out.read_text()
    for number in range(1, 8):
        assert re.search(rf"^### {number}\. ", report, re.M), f"table {number} missing"
    assert "trackio_flask | trackio | trackio ÷ ours" in report
    assert "python -m bench.run --quick" in report
