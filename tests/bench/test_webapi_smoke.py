"""`python -m bench.webapi --smoke` runs in seconds and prints its table and summary line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_webapi_benchmark_runs_and_reports() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.webapi", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.split()[:3] == ["Web", "API", "method"] for line in lines)
    assert any(line.startswith("chat.update ") for line in lines)
    assert any(line.startswith("coalescing, ") for line in lines)
    assert lines[-1].startswith("webapi: ")
    assert lines[-1].endswith("smoke)")
