"""Work that many requests bring at once, done in rounds: one transaction for all that came
while the last round was being done, like a database's group commit.

An item waits in a list while a round is under way; the next round takes every item that
came meanwhile (up to `batch`), once the requests the event loop has ready have had their
turn. Fifty requests at once cost a few transactions, not fifty, and never wait on each
other's locks; one request alone is served at once. A round that fails fails each of its
items with its error: nobody is told it went through. A round may also fail one item alone,
giving its error as that item's result.

On PostgreSQL a round runs in a worker thread, as all database work does: it waits on the
network and on locks other replicas hold, and the event loop answers everyone else
meanwhile. On SQLite it runs on the event loop itself: the database is a library in this
process, a round is a few milliseconds of the interpreter's time wherever it runs, and in a
thread it costs more, each statement handing the interpreter's lock to the event loop and
back (bench.gate: 1,500-1,800 against 2,100-2,450 questions a second). Writers from several
threads would also collide on SQLite's one write lock and sleep in its busy handler (up to
100 ms a try); in rounds they take turns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Rounds(Generic[Item, Result]):
    def __init__(
        self,
        do: Callable[[list[Item]], Sequence[Result | BaseException]],
        *,
        in_thread: bool,
        batch: int = 100,
        name: str = "rounds",
        after: Callable[[Sequence[Result | BaseException]], None] = lambda _: None,
        timed: Callable[[int, float], None] = lambda _size, _seconds: None,
    ) -> None:
        self.do = do
        #: Called on the event loop with each round's results (do may run in a thread).
        self.after = after
        #: Called on the event loop with each round's size and how long it took (seconds).
        self.timed = timed
        self.in_thread = in_thread
        self.batch = batch
        self.name = name
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """`item` done in the next round; its result, or the round's error."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._running is None:
            self._running = asyncio.create_task(self._rounds(), name=self.name)
        return await future

    async def _rounds(self) -> None:
        try:
            while self._waiting:
                await self._gather()
                round_, self._waiting = self._waiting[: self.batch], self._waiting[self.batch :]
                items = [item for item, _ in round_]
                began = time.perf_counter()
                try:
                    if self.in_thread:
                        results = await asyncio.to_thread(self.do, items)
                    else:
                        results = self.do(items)
                except Exception as error:  # each item hears of it; none is told it went through
                    for _, future in round_:
                        if not future.done():
                            future.set_exception(error)
                    continue
                finally:
                    self.timed(len(items), time.perf_counter() - began)
                for (_, future), result in zip(round_, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):  # this item alone failed
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                self.after(results)
        finally:
            self._running = None

    async def _gather(self) -> None:
        """Let the requests already read have their turn, as long as they bring items: a
        round of fifty costs little more than a round of one."""
        while len(self._waiting) < self.batch:
            before = len(self._waiting)
            await asyncio.sleep(0)
            if len(self._waiting) == before:
                return
