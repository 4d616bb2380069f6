"""Keep `changebot serve` small: glibc's malloc gives each thread that allocates an arena of
its own (up to eight per core) and keeps what is freed in it for reuse, so a service whose
database work runs in a pool of threads holds tens of megabytes it no longer uses. Two arenas
serve the event loop and the pool with no measurable loss of speed (`python -m bench.ack`),
and keep the memory flat (`python -m bench.memory`). This is what MALLOC_ARENA_MAX=2 does,
applied from inside so that nobody has to remember to set it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2

#: A young collection after this many more allocations than frees (CPython's default: 700).
YOUNG = 50_000


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, found once (find_library runs ldconfig); None where there is none."""
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas, unless MALLOC_ARENA_MAX is set; False where there is no
    glibc (macOS, musl) or it refused."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    done = bool(mallopt(M_ARENA_MAX, arenas))
    if not done:
        log.info("could not limit malloc arenas; memory use may be higher")
    return done


def trim() -> bool:
    """Hand freed heap back to the system (glibc's malloc_trim), so that resident memory
    follows what is in use once a burst is over; False where there is no glibc."""
    malloc_trim = getattr(_libc(), "malloc_trim", None)
    return bool(malloc_trim(0)) if malloc_trim is not None else False


def tune_collector(young: int = YOUNG) -> None:
    """Collect young objects less often. In a burst, fifty requests are in flight at once,
    each holding hundreds of objects until it is answered. With CPython's default threshold of
    700, nearly every young collection finds them alive and promotes them, so the old
    generation fills with objects already gone and a full collection (tens of milliseconds,
    with every acknowledgement waiting behind it) comes every second. Every 50,000, most of
    a request's objects are gone before a collection comes (`python -m bench.ack`: p99 from
    about 160 to about 45 ms). The garbage waiting meanwhile is a few megabytes at most."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


def freeze_startup() -> None:
    """Once serving: what start-up made (modules, the app, the policy, the templates) lives as
    long as the process, so keep it out of every later collection's walk."""
    gc.collect()
    gc.freeze()
    log.info(
        "collector: young objects every %d allocations; %d objects from start-up frozen",
        gc.get_threshold()[0],
        gc.get_freeze_count(),
    )


def collect_between_bursts() -> None:
    """Collect now, while nobody waits, so that a burst starts with nothing counted towards
    a collection: a full collection, because the young ones would count towards one (and
    it is cheap once the start-up heap is frozen)."""
    gc.collect()
