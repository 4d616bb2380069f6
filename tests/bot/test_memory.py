"""`changebot serve` caps glibc's malloc arenas itself and hands freed heap back when idle."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

GLIBC = sys.platform == "linux" and ctypes.util.find_library("c") is not None


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_arenas_are_capped_unless_the_operator_chose_a_number() -> None:
    code = "from bot import memory; print(memory.limit_arenas())"
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        env={"MALLOC_ARENA_MAX": "4", "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    default = subprocess.run(
        [sys.executable, "-c", code], env={"PATH": ""}, capture_output=True, text=True, check=True
    )
    assert chosen.stdout.strip() == "False"  # theirs stands
    assert default.stdout.strip() == "True"


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_freed_heap_goes_back_to_the_system() -> None:
    code = (
        "from bot import memory\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'): return int(line.split()[1])\n"
        "blocks = [bytearray(100_000) for _ in range(2000)]\n"  # ~200 MB below mmap's threshold
        "del blocks[:-1]\n"  # all freed but the last, which pins the heap's top
        "before = rss(); memory.trim(); after = rss()\n"
        "print(before - after)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(done.stdout) > 50_000  # KiB handed back
