"""Background work gives way to a burst of requests, for a bounded time only, and a stop
finishes the moves that were acknowledged."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import Awaitable, Callable

import pytest

from bot import logs
from bot import traffic as traffic_module
from bot.traffic import Traffic


async def test_a_lull_comes_at_once_when_nothing_is_in_flight() -> None:
    started = time.monotonic()
    await Traffic(quiet=0.5).lull(longest=2.0)
    assert time.monotonic() - started < 0.25  # not the 0.5 s of quiet a request would need


async def test_background_work_waits_until_the_last_request_is_answered() -> None:
    traffic = Traffic(quiet=0.05)
    traffic.started()

    async def answer_later() -> None:
        await asyncio.sleep(0.3)
        traffic.finished()

    answering = asyncio.ensure_future(answer_later())
    started = time.monotonic()
    await traffic.lull(longest=5.0)
    waited = time.monotonic() - started
    await answering
    assert 0.3 + 0.05 <= waited < 1.0


async def test_a_burst_that_never_ends_holds_background_work_back_only_so_long() -> None:
    traffic = Traffic(quiet=0.02)
    traffic.started()  # never finished
    started = time.monotonic()
    await traffic.lull(longest=0.2)
    assert 0.2 <= time.monotonic() - started < 0.6


async def test_a_request_inside_the_quiet_window_starts_it_again() -> None:
    traffic = Traffic(quiet=0.2)
    traffic.started()
    traffic.finished()
    waiting = asyncio.ensure_future(traffic.lull(longest=5.0))
    started = time.monotonic()
    await asyncio.sleep(0.1)
    traffic.started()  # before the 0.2 s of quiet were up
    traffic.finished()
    await waiting
    assert 0.3 <= time.monotonic() - started < 1.0


async def test_one_lull_lets_every_waiter_go() -> None:
    traffic = Traffic(quiet=0.05)
    traffic.started()
    waiters = [asyncio.ensure_future(traffic.lull(longest=5.0)) for _ in range(500)]
    await asyncio.sleep(0.1)
    assert not any(w.done() for w in waiters)
    started = time.monotonic()
    traffic.finished()
    await asyncio.gather(*waiters)
    assert time.monotonic() - started < 0.5


def test_requests_that_follow_each_other_closely_count_as_busy() -> None:
    clock = [100.0]
    traffic = Traffic(monotonic=lambda: clock[0])
    traffic.started()
    traffic.finished()
    assert not traffic.quiet_for(0.05)
    clock[0] += 0.06
    assert traffic.quiet_for(0.05)


async def test_a_stop_waits_for_the_moves_it_acknowledged() -> None:
    traffic = Traffic(quiet=0.05)
    traffic.started()  # the burst is still on when the stop comes
    made: list[int] = []

    def move(n: int) -> Callable[[], Awaitable[None]]:
        async def make() -> None:
            await asyncio.sleep(0.05)
            made.append(n)

        return make

    for n in range(20):
        traffic.defer(move(n))
    await asyncio.sleep(0)
    assert traffic.owed == 20 and made == []
    traffic.finished()  # the server stops taking requests
    assert await traffic.drain(timeout=5)
    assert sorted(made) == list(range(20)) and traffic.owed == 0


async def test_a_drain_that_cannot_finish_says_so() -> None:
    traffic = Traffic(quiet=0.05)
    release = asyncio.Event()
    traffic.defer(release.wait)
    await asyncio.sleep(0)
    assert not await traffic.drain(timeout=0.1)
    release.set()
    assert await traffic.drain(timeout=1)
    assert traffic.owed == 0


async def test_in_a_burst_that_goes_on_overdue_work_is_paced_and_the_lull_frees_the_rest() -> None:
    traffic = Traffic(quiet=0.05, longest=0.1, pace=0.1)
    traffic.started()  # the burst
    made: list[float] = []

    async def move() -> None:
        made.append(time.monotonic())

    started = time.monotonic()
    for _ in range(50):
        traffic.defer(move)
    await asyncio.sleep(0.55)  # 0.1 s until overdue, then one every 0.1 s
    assert 3 <= len(made) <= 6
    # Released one every 0.1 s; each runs when the loop gets to it, which on a loaded machine
    # can be some milliseconds late (a CI run saw a gap under 0.09 s). Unpaced, they would go
    # together, gaps of nothing: half the pace tells the two apart.
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(made))
    traffic.finished()  # the burst ends: the rest go at once
    assert await traffic.drain(timeout=1)
    assert len(made) == 50 and made[-1] - started < 0.55 + 0.3


async def test_work_that_fails_is_logged_and_no_longer_owed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    traffic = Traffic(quiet=0.01)

    async def broken() -> None:
        raise RuntimeError("the database went away")

    traffic.defer(broken)
    assert await traffic.drain(timeout=1)
    assert "work after an acknowledgement failed" in caplog.text
    assert "the database went away" in caplog.text


async def test_deferred_work_runs_in_the_context_of_the_request_that_deferred_it() -> None:
    traffic = Traffic(quiet=0.01)
    seen: list[str] = []

    async def move() -> None:
        seen.append(logs.request_id.get())

    for request in ("req-one", "req-two"):
        token = logs.request_id.set(request)
        traffic.defer(move)
        logs.request_id.reset(token)
    assert await traffic.drain(timeout=1)
    assert sorted(seen) == ["req-one", "req-two"]


async def test_work_started_at_once_runs_now_and_a_stop_waits_for_it() -> None:
    traffic = Traffic(quiet=0.05)
    traffic.started()  # a burst: deferred work would wait, this does not
    release = asyncio.Event()
    opened: list[str] = []

    async def open_form() -> None:
        opened.append("started")
        await release.wait()
        opened.append("opened")

    traffic.at_once(open_form)
    await asyncio.sleep(0.01)
    assert opened == ["started"] and traffic.owed == 1
    assert not await traffic.drain(timeout=0.05)
    release.set()
    assert await traffic.drain(timeout=1)
    assert opened == ["started", "opened"]


async def test_work_to_do_at_once_runs_a_bounded_number_at_a_time_in_the_order_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(traffic_module, "AT_ONCE", 3)
    traffic = Traffic(quiet=0.05)
    release = asyncio.Event()
    started: list[int] = []
    done: list[int] = []

    async def open_form(n: int) -> None:
        started.append(n)
        await release.wait()
        done.append(n)

    for n in range(10):
        traffic.at_once(open_form, n)
    await asyncio.sleep(0.01)
    assert started == [0, 1, 2] and traffic.owed == 10
    release.set()
    assert await traffic.drain(timeout=1)
    assert started == list(range(10)) and sorted(done) == list(range(10))


async def test_at_once_work_runs_in_the_context_of_the_request_that_asked_for_it() -> None:
    traffic = Traffic(quiet=0.01)
    seen: list[tuple[str, str]] = []

    async def open_form(name: str) -> None:
        await asyncio.sleep(0)
        seen.append((name, logs.request_id.get()))

    for request in ("req-one", "req-two", "req-three"):
        token = logs.request_id.set(request)
        traffic.at_once(open_form, request.upper())
        logs.request_id.reset(token)
    assert await traffic.drain(timeout=1)
    assert sorted(seen) == [
        ("REQ-ONE", "req-one"),
        ("REQ-THREE", "req-three"),
        ("REQ-TWO", "req-two"),
    ]
    assert logs.request_id.get() == "-"


async def test_waiting_work_leaves_little_for_the_garbage_collector_to_walk() -> None:
    """A burst's waiting work is what the collector counts towards its next pass (see
    bot/traffic.py): a task or a closure per click would be a dozen objects each."""
    traffic = Traffic(quiet=0.05)
    traffic.started()  # a burst: deferred work waits, forms wait for a free taker
    release = asyncio.Event()

    async def move(n: int) -> None:
        pass

    async def open_form(n: int) -> None:
        await release.wait()

    clicks = 2000
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for n in range(clicks):
            traffic.defer(move, n)
            traffic.at_once(open_form, n)
        per_click = (len(gc.get_objects()) - before) / clicks
    finally:
        gc.enable()
    assert per_click <= 5, f"{per_click:.1f} objects kept per deferred move and form"
    traffic.finished()
    release.set()
    assert await traffic.drain(timeout=5)


async def test_a_lull_lets_waiting_work_through_a_few_at_a_time_and_a_new_burst_holds_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(traffic_module, "MOVING", 3)
    traffic = Traffic(quiet=0.02, longest=60.0)
    traffic.started()  # a burst: everything waits
    release = asyncio.Event()
    started: list[int] = []

    async def move(n: int) -> None:
        started.append(n)
        await release.wait()

    for n in range(20):
        traffic.defer(move, n)
    traffic.finished()  # the burst pauses: a lull comes
    await asyncio.sleep(0.1)
    assert started == [0, 1, 2]  # no more than MOVING under way, in the order deferred
    traffic.started()  # and resumes
    release.set()
    await asyncio.sleep(0.1)
    assert started == [0, 1, 2]  # what finished made room, but the burst holds the rest back
    traffic.finished()
    assert await traffic.drain(timeout=2)
    assert started == list(range(20)) and traffic.owed == 0
