"""`python -m bench.ack --smoke` runs in seconds and prints its table and summary line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_acknowledgement_benchmark_runs_and_reports() -> None:
    command = [sys.executable, "-m", "bench.ack", "--smoke"]
    url = os.environ.get("CHANGEBOT_TEST_POSTGRES_URL", "").strip()
    command += ["--postgres-url", url] if url else ["--no-postgres"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("bare Bolt (baseline)") for line in lines)
    assert any(line.startswith("changebot (SQLite), Web API +") for line in lines)
    if url:
        assert any(line.startswith("changebot (PostgreSQL)") for line in lines)
    assert lines[-1].startswith("ack: 40 requests per app at 5 connections, median of 1 round; ")
    assert lines[-1].endswith("smoke run, targets not checked")
