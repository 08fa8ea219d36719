"""The benchmark scripts still start after their modules move (they import each other by name).

Not a benchmark run: each script's `--help` must exit 0, which needs every import to resolve.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BENCHMARKS = Path(settings.BASE_DIR) / "benchmarks"
SCRIPTS = sorted(
    p.name for p in BENCHMARKS.glob("*.py") if 'if __name__ == "__main__"' in p.read_text("utf-8")
)


def _help(*python_args: str, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *python_args, str(BENCHMARKS / script), "--help"],
        cwd=BENCHMARKS.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_benchmark_script_starts(script):
    """`python benchmarks/<script> --help` exits 0: its imports of the other benchmark modules resolve."""
    done = _help(script=script)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_ingest_cpu_needs_nothing_beyond_the_standard_library():
    """ingest_cpu.py also runs under the jq2qmt peer's interpreter (no requests, no Django): with
    site-packages switched off (-S) it still starts."""
    done = _help("-S", script="ingest_cpu.py")
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_list_covers_the_scripts():
    """The scripts the README names are among those checked."""
    assert {
        "ingest.py",
        "ingest_cpu.py",
        "latency.py",
        "remote.py",
        "remote_mode.py",
        "orders_page.py",
    } <= set(SCRIPTS)
