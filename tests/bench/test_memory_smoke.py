"""`python -m bench.memory --smoke` runs in seconds and prints its table and summary line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_memory_benchmark_runs_and_reports() -> None:
    command = [sys.executable, "-m", "bench.memory", "--smoke"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.split()[:3] == ["app", "when", "RSS"] for line in lines)
    assert any(line.startswith("changebot serve (SQLite)  peak (VmHWM)") for line in lines)
    assert any(line.startswith("bare Bolt (reference)") for line in lines)
    assert lines[-1].startswith("memory: changebot serve ")
    assert lines[-1].endswith("smoke run, targets not checked")
