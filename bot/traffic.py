"""How busy this replica is answering Slack, so background work can give way to a burst.

Slack waits 3 seconds for an acknowledgement and an incident brings dozens of clicks at once;
a card update or an approval recorded a second later costs nobody anything (and several
updates of one card coalesce meanwhile). So work that follows an acknowledgement and is bound
to no deadline of Slack's (a move made by a click; the publisher's batches) waits for a lull
first: for no request in flight during `quiet` seconds, or `longest` seconds at most, after
which it goes ahead whatever the traffic, paced while the burst lasts. Waiting costs nothing:
waiters sleep on one event, set once the lull has come.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable


class Traffic:
    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        quiet: float = 0.05,
        pace: float = 0.05,
    ) -> None:
        self.monotonic = monotonic
        self.quiet = quiet
        self.in_flight = 0
        self.last_seen = -float("inf")
        #: Moves acknowledged and not yet made: a stop waits for them (`drain`).
        self.owed = 0
        self._calm: asyncio.Event | None = None
        self._check: asyncio.TimerHandle | None = None
        self._paid: asyncio.Event | None = None
        #: While a burst goes on, work overdue for a lull goes one piece every `pace` seconds.
        self.pace = pace
        self._overdue: deque[asyncio.Future[None]] = deque()
        self._pacer: asyncio.Task[None] | None = None

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

    @contextlib.asynccontextmanager
    async def after_ack(self, longest: float = 2.0) -> AsyncIterator[None]:
        """Hold acknowledged work for a lull, and count it until it is done, so that a stop
        finishes it (`drain`) rather than drop a click Slack was told was taken. Work that
        has waited `longest` in a burst that goes on is let through one piece every `pace`
        seconds, so it never crowds the acknowledgements out (each piece takes a database
        thread, and with it a share of the interpreter's lock, from the event loop); the lull
        lets all the rest through at once."""
        self.owed += 1
        try:
            if not await self.lull(longest):
                await self._turn()  # the burst goes on: overdue work is paced
            yield
        finally:
            self.owed -= 1
            if self.owed == 0 and self._paid is not None:
                self._paid.set()

    async def drain(self, timeout: float) -> bool:
        """Wait until all acknowledged work is done, or `timeout`; False if some is not."""
        if self.owed:
            self._paid = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._paid.wait(), timeout=timeout)
        return self.owed == 0

    async def _turn(self) -> None:
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._overdue.append(turn)
        if self._pacer is None or self._pacer.done():
            self._pacer = asyncio.create_task(self._pace(), name="paced-after-ack-work")
        await turn

    async def _pace(self) -> None:
        while self._overdue:
            if self._calm is None or self._calm.is_set():
                while self._overdue:
                    _let_go(self._overdue.popleft())
                return
            while self._overdue and not _let_go(self._overdue.popleft()):
                pass  # its waiter was cancelled: the next one's turn
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._calm.wait(), timeout=self.pace)

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


def _let_go(turn: asyncio.Future[None]) -> bool:
    if turn.done():
        return False
    turn.set_result(None)
    return True
