"""`python -m bench.sweep --smoke` runs in seconds and prints its table and summary line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_sweep_benchmark_runs_and_reports() -> None:
    command = [sys.executable, "-m", "bench.sweep", "--smoke"]
    url = os.environ.get("CHANGEBOT_TEST_POSTGRES_URL", "").strip()
    if url:
        command += ["--postgres-url", url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.split()[:3] == ["engine", "claim", "changes"] for line in lines)
    assert any(line.startswith("sqlite    chaser") for line in lines)
    assert any(line.startswith("sqlite    publisher") for line in lines)
    assert lines[-1].startswith("sweep: claim p50 ")
    assert lines[-1].endswith("smoke run, target not checked")
