"""`python -m bench.ab HEAD` compares the working tree with a commit, round by round."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_ab_benchmark_compares_this_tree_with_a_commit() -> None:
    command = [
        sys.executable,
        "-m",
        "bench.ab",
        "HEAD",
        "--engine",
        "sqlite",
        "--rounds",
        "2",
        "--requests",
        "100",
        "--size",
        "1000",
    ]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=240, env=dict(os.environ)
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("round 2: A ") for line in lines)
    assert any(line.startswith("A ") for line in lines) and any(
        line.startswith("B ") for line in lines
    )
    assert lines[-1].startswith(
        "B (this tree, sqlite) over A (HEAD, sqlite), CPU per answer: median "
    )
