"""One leased worker: what the publisher, the chaser and GitHub's worker have in common.

Each claims the work that is due under a lease in its own table (storage/leases.py says how),
does it, writes progress only while the lease is still its own, and hands every lease back
when the replica stops, so another replica takes the work over at once. What the work is
belongs to each worker; the claiming, the loop and the database turns are here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine
from sqlmodel import Session

from storage.uow import one_statement, read_only
from workflows.policy import Policy
from workflows.ports import Clock

log = logging.getLogger(__name__)
W = TypeVar("W")
W_co = TypeVar("W_co", covariant=True)
T = TypeVar("T")


class LeasedTable(Protocol[W_co]):
    """The storage side of a worker (storage/outbox.py, obligations.py, github.py)."""

    def claim_due(
        self, session: Session, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[W_co]: ...

    def release_all(self, session: Session, owner: str) -> int: ...


class LeaseLost(Exception):
    """Another replica took the work over; stop without writing anything."""


def stop_if_cancelled() -> None:
    """Raise the cancellation that Python 3.11's `asyncio.wait_for` swallows when what it
    waits for is done in the same turn as the task is cancelled (CPython gh-86296): a worker
    kicked as it is stopped would otherwise go on forever, and the stop with it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def replica_id() -> str:
    """Names this process in the leases it holds (host, pid and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeasedWorker(Generic[W]):
    """Claims and does the work of one table; `run` sweeps it on a timer or when kicked."""

    #: What the worker does, for the log line when a sweep fails.
    doing = "work"
    batch = 50

    def __init__(
        self,
        table: LeasedTable[W],
        engine: Engine,
        clock: Clock,
        *,
        owner: str | None,
        lease: timedelta,
    ) -> None:
        self.table = table
        self.engine = engine
        self.clock = clock
        self.owner = owner or replica_id()
        self.lease = lease
        self._wake = asyncio.Event()
        # Made once: an engine's execution_options() copy costs 40 us of the interpreter.
        self._reading_engine = read_only(engine)
        self._one_statement_engine = one_statement(engine)

    # -- the loop -------------------------------------------------------------------------------

    def kick(self) -> None:
        """There is news: look now rather than at the next sweep."""
        self._wake.set()

    async def run(self, interval: float) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            stop_if_cancelled()
            self._wake.clear()
            try:
                while True:  # a full batch means more may be due
                    batch = await self.next_batch()
                    if await self.sweep(batch) < batch:
                        break
            except Exception:  # the loop must outlive any one bad sweep
                log.exception("%s failed; trying again at the next sweep", self.doing)

    async def next_batch(self) -> int:
        """How much to claim at once (the publisher claims less while people are busy)."""
        return self.batch

    async def sweep(self, batch: int | None = None) -> int:
        """Claim what is due and do it all; returns how much was claimed."""
        claimed = await self.claim(batch or self.batch)
        await asyncio.gather(*(self.handle(work) for work in claimed))
        return len(claimed)

    async def handle(self, work: W) -> None:  # pragma: no cover - each worker has its own
        """Do one piece of claimed work (the publisher sweeps its own way instead)."""
        raise NotImplementedError

    # -- the leases -----------------------------------------------------------------------------

    async def claim(self, limit: int) -> Sequence[W]:
        return await self.in_session(
            self.table.claim_due, self.owner, self.clock.now(), self.lease, limit
        )

    async def release_all(self) -> int:
        """On stop: hand every lease back, so another replica takes the work over at once."""
        return await self.in_session(self.table.release_all, self.owner)

    async def in_session(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `work(session, ...)` off the event loop, in a session of its own."""
        return await _in_session(self.engine, work, *args, **kwargs)

    async def in_one_statement(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`work(session, ...)` that writes with a single statement: as `in_session`, and on
        PostgreSQL in autocommit (storage.uow.one_statement)."""
        return await _in_session(self._one_statement_engine, work, *args, **kwargs)

    async def reading(self, work: Callable[..., T], *args: Any) -> T:
        """`work(session, ...)` that only reads: off the event loop, and on SQLite without the
        write lock, so it never holds up a writer (the gate's rounds, on the event loop, would
        wait for it in SQLite's busy handler, and everyone with them)."""
        return await _in_session(self._reading_engine, work, *args)


async def _in_session(engine: Engine, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`work(session, ...)` off the event loop, in a session of its own on `engine`."""

    def go() -> T:
        with Session(engine) as session:
            return work(session, *args, **kwargs)

    return await asyncio.to_thread(go)


#: How long a replica holds what it claimed before another may take it over.
LEASE = timedelta(seconds=60)


class SlackWorker(LeasedWorker[W]):
    """A leased worker whose work is telling people in Slack, under the policy: the publisher
    (cards and replies) and the chaser (reminders). `work` is its table's storage module."""

    work: LeasedTable[W]

    def __init__(
        self,
        engine: Engine,
        client: AsyncWebClient,
        policy: Policy,
        clock: Clock,
        *,
        owner: str | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        super().__init__(self.work, engine, clock, owner=owner, lease=lease)
        self.client = client
        self.policy = policy
