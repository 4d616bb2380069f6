"""How busy this replica is answering Slack, so background work can give way to a burst.

Slack waits 3 seconds for an acknowledgement and an incident brings dozens of clicks at once;
a card update or an approval recorded a second later costs nobody anything (and several
updates of one card coalesce meanwhile). So work that follows an acknowledgement and is bound
to no deadline of Slack's (a move made by a click; the publisher's batches) waits for a lull
first: for no request in flight during `quiet` seconds, or `longest` seconds at most, after
which it goes ahead whatever the traffic, paced while the burst lasts. Waiting costs next to
nothing: a deferred move is a function and its arguments in a queue (not a request held
open), and one task waits for the lull on behalf of them all.

What waits is kept small on purpose: a function, its arguments and the request's ID, never a
task, a closure or a copy of the request's context. In a burst, what the interpreter's
garbage collector counts towards its next pass is what was made and is still alive; a task
and its coroutines, or a closure and its cells, are a dozen such objects per click, and with
thousands waiting a collection comes in the middle of the burst (a pause of 10 to 20 ms with
fifty acknowledgements behind it). Work to do at once (forms) is likewise queued for a few
tasks that take it in turn, as many as the Web API session has connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from bot import logs

log = logging.getLogger(__name__)

Work = Callable[..., Awaitable[object]]
#: Work to do after an acknowledgement: what to call and with what, and the ID of the request
#: it came from (so its log lines carry it).
Job = tuple[Work, tuple[Any, ...], str]
#: Deferred work also keeps when it was handed over.
Deferred = tuple[float, Work, tuple[Any, ...], str]

#: How many pieces of work to do at once run together: aiohttp's connection limit per
#: session, which is what a form's `views.open` waits for anyway.
AT_ONCE = 100
#: How many pieces of deferred work are under way together, at most. A lull lets waiting
#: work through this many at a time, and is looked for again before each next piece: a
#: burst that resumes (a lull can be a pause of 50 ms) finds a few moves under way, not all
#: that waited, each holding a database thread and a share of the interpreter's lock.
MOVING = 8


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
        self._moving = 0
        self._room = asyncio.Event()
        self._now: deque[Job] = deque()
        self._takers = 0

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

    def defer(self, work: Work, *args: Any) -> None:
        """Call `work(*args)` once the burst allows, and count it until it is done, so that a
        stop finishes it (`drain`) rather than drop a click Slack was told was taken.

        It waits for a lull, `longest` seconds at most; overdue work in a burst that goes on
        is let through one piece every `pace` seconds, so it never crowds the
        acknowledgements out (each piece takes a database thread, and with it a share of
        the interpreter's lock, from the event loop); a lull lets the rest through, `MOVING`
        pieces under way at most, for as long as it lasts. The request that deferred it is
        answered meanwhile and gone: what waits is `work` and `args` alone, and one task
        releases it all.
        """
        self.owed += 1
        self._waiting.append((self.monotonic(), work, args, logs.request_id.get()))
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.create_task(self._release(), name="after-ack-work")

    def at_once(self, work: Work, *args: Any) -> None:
        """Call `work(*args)` now, apart from the request that asked for it: a form must
        open while its trigger lasts (3 seconds), but the acknowledgement need not wait for
        it, nor the request be held open meanwhile. At most `AT_ONCE` run together, in the
        order asked; a stop finishes them, as it does deferred work."""
        self.owed += 1
        self._now.append((work, args, logs.request_id.get()))
        if self._takers < AT_ONCE:
            self._takers += 1
            self._keep(asyncio.create_task(self._take_at_once(), name="at-once-work"))

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
            quiet = await self.lull(left if left > 0 else self.pace)
            if not quiet and self.monotonic() - since < self.longest:
                continue
            if self._moving >= MOVING:
                self._room.clear()
                await self._room.wait()
                continue  # and look again: the burst may have resumed meanwhile
            self._moving += 1
            _, work, args, request_id = self._waiting.popleft()
            self._keep(asyncio.create_task(self._move((work, args, request_id))))

    async def _move(self, job: Job) -> None:
        try:
            await self._do(job)
        finally:
            self._moving -= 1
            self._room.set()

    async def _take_at_once(self) -> None:
        try:
            while self._now:
                await self._do(self._now.popleft())
        finally:
            self._takers -= 1

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _do(self, job: Job) -> None:
        work, args, request_id = job
        token = logs.request_id.set(request_id)
        try:
            await work(*args)
        except Exception:
            log.exception("work after an acknowledgement failed")
        finally:
            logs.request_id.reset(token)
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
