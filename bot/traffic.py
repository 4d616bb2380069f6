"""How busy this replica is answering Slack, so background work can give way to a burst.

Slack waits 3 seconds for an acknowledgement and an incident brings dozens of clicks at once;
a card update or an approval recorded a second later costs nobody anything (and several
updates of one card coalesce meanwhile). So work that follows an acknowledgement and is bound
to no deadline of Slack's (a move made by a click; the publisher's batches) waits for a lull
first: for no request in flight during `quiet` seconds, or `longest` seconds at most, after
which it goes ahead whatever the traffic, paced while the burst lasts. Waiting costs next to
nothing: a deferred move is a function and its arguments in a queue (not a request held
open), and one task waits for the lull on behalf of them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: Work to do after an acknowledgement: when it was handed over, what to call, and the
#: context of the request it came from (so its log lines carry that request's ID).
Deferred = tuple[float, Callable[[], Awaitable[object]], contextvars.Context]


class Traffic:
    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        quiet: float = 0.05,
        longest: float = 2.0,
        pace: float = 0.05,
    ) -> None:
        self.monotonic = monotonic
        self.quiet = quiet
        self.in_flight = 0
        self.last_seen = -float("inf")
        self._calm: asyncio.Event | None = None
        self._check: asyncio.TimerHandle | None = None
        #: Acknowledged work waits for a lull at most `longest` seconds; overdue while the
        #: burst goes on, it goes one piece every `pace` seconds.
        self.longest = longest
        self.pace = pace
        #: Work acknowledged and not yet done, waiting or running: a stop waits for it.
        self.owed = 0
        self._paid: asyncio.Event | None = None
        self._waiting: deque[Deferred] = deque()
        self._releaser: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def started(self) -> None:
        self.in_flight += 1
        self.last_seen = self.monotonic()
        if self._calm is not None:
            self._calm.clear()
        if self._check is not None:
            self._check.cancel()
            self._check = None

    def finished(self) -> None:
        self.in_flight -= 1
        self.last_seen = self.monotonic()
        if self.in_flight == 0 and self._calm is not None:
            self._check_later(self.quiet)

    def quiet_for(self, seconds: float) -> bool:
        return self.in_flight == 0 and self.monotonic() - self.last_seen >= seconds

    async def lull(self, longest: float = 2.0) -> bool:
        """Return once no request has been in flight for `quiet` seconds (True), or after
        `longest` (False: the burst goes on)."""
        if self.quiet_for(self.quiet):
            return True
        if self._calm is None:
            self._calm = asyncio.Event()
            if self.in_flight == 0:
                self._check_later(self.quiet)
        try:
            await asyncio.wait_for(self._calm.wait(), timeout=longest)
        except TimeoutError:
            return False
        return True

    def defer(self, work: Callable[[], Awaitable[object]]) -> None:
        """Do `work` once the burst allows, and count it until it is done, so that a stop
        finishes it (`drain`) rather than drop a click Slack was told was taken.

        It waits for a lull, `longest` seconds at most; overdue work in a burst that goes on
        is let through one piece every `pace` seconds, so it never crowds the
        acknowledgements out (each piece takes a database thread, and with it a share of
        the interpreter's lock, from the event loop); the lull lets all the rest through at
        once. The request that deferred it is answered meanwhile and gone: what waits is
        `work` alone, and one task releases it all.
        """
        self.owed += 1
        self._waiting.append((self.monotonic(), work, contextvars.copy_context()))
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.create_task(self._release(), name="after-ack-work")

    def at_once(self, work: Awaitable[object]) -> None:
        """Start `work` now, apart from the request that asked for it: a form must open
        while its trigger lasts (3 seconds), but the acknowledgement need not wait for it,
        nor the request be held open meanwhile. A stop finishes it, as it does deferred
        work."""
        self.owed += 1
        self._start(work, contextvars.copy_context())

    async def drain(self, timeout: float) -> bool:
        """Wait until all acknowledged work is done, or `timeout`; False if some is not."""
        if self.owed:
            self._paid = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._paid.wait(), timeout=timeout)
        return self.owed == 0

    async def _release(self) -> None:
        while self._waiting:
            since = self._waiting[0][0]
            left = since + self.longest - self.monotonic()
            if await self.lull(left if left > 0 else self.pace):
                while self._waiting:
                    self._start_next()
            elif self.monotonic() - since >= self.longest:
                self._start_next()  # overdue, and the burst goes on

    def _start_next(self) -> None:
        _, work, context = self._waiting.popleft()
        self._start(work(), context)

    def _start(self, work: Awaitable[object], context: contextvars.Context) -> None:
        task = asyncio.create_task(self._do(work), context=context)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _do(self, work: Awaitable[object]) -> None:
        try:
            await work
        except Exception:
            log.exception("work after an acknowledgement failed")
        finally:
            self.owed -= 1
            if self.owed == 0 and self._paid is not None:
                self._paid.set()

    def _check_later(self, delay: float) -> None:
        if self._check is not None:
            self._check.cancel()
        self._check = asyncio.get_running_loop().call_later(max(delay, 0.001), self._settle)

    def _settle(self) -> None:
        self._check = None
        if self._calm is None or self.in_flight:
            return
        left = self.quiet - (self.monotonic() - self.last_seen)
        if left <= 0:
            self._calm.set()
        else:
            self._check_later(left)
