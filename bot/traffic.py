"""How busy this replica is answering Slack, so background work can give way to a burst.

Slack waits 3 seconds for an acknowledgement and an incident brings dozens of clicks at once;
a card update or an approval recorded a second later costs nobody anything (and several
updates of one card coalesce meanwhile). So work that follows an acknowledgement and is bound
to no deadline of Slack's (a move made by a click; the publisher's batches) waits for a lull
first: for no request in flight during `quiet` seconds, or `longest` seconds at most, after
which it goes ahead whatever the traffic. Waiting costs nothing: waiters sleep on one event,
set once the lull has come.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable


class Traffic:
    def __init__(
        self, monotonic: Callable[[], float] = time.monotonic, *, quiet: float = 0.05
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

    async def lull(self, longest: float = 2.0) -> None:
        """Return once no request has been in flight for `quiet` seconds, or after `longest`."""
        if self.quiet_for(self.quiet):
            return
        if self._calm is None:
            self._calm = asyncio.Event()
            if self.in_flight == 0:
                self._check_later(self.quiet)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._calm.wait(), timeout=longest)

    @contextlib.asynccontextmanager
    async def after_ack(self, longest: float = 2.0) -> AsyncIterator[None]:
        """Hold acknowledged work for a lull, and count it until it is done, so that a stop
        finishes it (`drain`) rather than drop a click Slack was told was taken."""
        self.owed += 1
        try:
            await self.lull(longest)
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
