"""`changebot serve` caps glibc's malloc arenas itself, hands freed heap back when idle, and
keeps its garbage collector from walking objects that are in flight or live for good."""

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


def _full_collections_in_bursts(tuned: bool) -> int:
    """Full collections while 20 bursts come and go, each holding 50 requests' worth of
    objects (25,000 small containers) until it is answered."""
    code = (
        "import gc\n"
        "from bot import memory\n"
        f"if {tuned}: memory.tune_collector()\n"
        "full = gc.get_stats()[2]['collections']\n"
        "for burst in range(20):\n"
        "    in_flight = [{'request': i, 'fields': [i]} for i in range(12_500)]\n"
        "    del in_flight\n"
        "print(gc.get_stats()[2]['collections'] - full)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_objects_in_flight_do_not_bring_full_collections() -> None:
    assert _full_collections_in_bursts(tuned=False) > 0  # CPython's default promotes them
    assert _full_collections_in_bursts(tuned=True) == 0


def test_what_start_up_made_is_out_of_the_collectors_sight() -> None:
    code = "import gc\nfrom bot import memory\nmemory.freeze_startup()\n"
    code += "print(gc.get_freeze_count())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(done.stdout) > 1000
