"""`python -m bench.calendar --smoke` runs in seconds and prints its table and summary line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_calendar_benchmark_runs_and_reports() -> None:
    command = [sys.executable, "-m", "bench.calendar", "--smoke"]
    url = os.environ.get("CHANGEBOT_TEST_POSTGRES_URL", "").strip()
    command += ["--postgres-url", url] if url else ["--engines", "sqlite"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.split()[:3] == ["engine", "stored", "schedule"] for line in lines)
    rows = [line.split()[:2] for line in lines]
    assert ["SQLite", "1k"] in rows and ["SQLite", "2k"] in rows
    assert any(line.startswith("plan: SQLite month at 2,000 changes") for line in lines)
    assert lines[-1].startswith("calendar: worst p50 ")
    assert lines[-1].endswith("smoke run, targets not checked")
