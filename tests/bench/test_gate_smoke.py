"""`python -m bench.gate --smoke` runs in a minute and prints its tables and summary line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gate_benchmark_runs_and_reports() -> None:
    command = [sys.executable, "-m", "bench.gate", "--smoke", "--no-postgres"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=240, env=dict(os.environ)
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("bare endpoint (baseline)") for line in lines)
    assert any(line.startswith("changebot (SQLite, 1k)") for line in lines)
    assert any(line.startswith("webhook (SQLite), GitHub API +1s") for line in lines)
    assert lines[-1].startswith("gate: 100 asks per round at 10 pipelines")
    assert lines[-1].endswith("smoke run, targets not checked")
