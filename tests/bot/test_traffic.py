"""Background work gives way to a burst of requests, for a bounded time only."""

from __future__ import annotations

import asyncio
import time

from bot.traffic import Traffic


async def test_a_lull_comes_at_once_when_nothing_is_in_flight() -> None:
    started = time.monotonic()
    await Traffic().lull(quiet=0.05, longest=2.0)
    assert time.monotonic() - started < 0.05


async def test_background_work_waits_until_the_last_request_is_answered() -> None:
    traffic = Traffic()
    traffic.started()

    async def answer_later() -> None:
        await asyncio.sleep(0.3)
        traffic.finished()

    answering = asyncio.ensure_future(answer_later())
    started = time.monotonic()
    await traffic.lull(quiet=0.05, longest=5.0)
    waited = time.monotonic() - started
    await answering
    assert 0.3 <= waited < 1.0


async def test_a_burst_that_never_ends_holds_background_work_back_only_so_long() -> None:
    traffic = Traffic()
    traffic.started()  # never finished
    started = time.monotonic()
    await traffic.lull(quiet=0.02, longest=0.2)
    assert 0.2 <= time.monotonic() - started < 0.6


async def test_requests_that_follow_each_other_closely_count_as_busy() -> None:
    clock = [100.0]
    traffic = Traffic(monotonic=lambda: clock[0])
    traffic.started()
    traffic.finished()
    assert not traffic.quiet_for(0.05)
    clock[0] += 0.06
    assert traffic.quiet_for(0.05)
