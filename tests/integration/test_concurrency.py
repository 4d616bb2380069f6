"""Many writers at once, as several replicas (or one busy bot) would be.

SQLite serialises writers with write transactions that begin immediately; PostgreSQL with the
lock each writer takes on the audit head row. Either way the audit trail stays one chain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine

from storage.uow import SqlUnitOfWork
from tests.integration.changes import (
    POLICY,
    REQUESTER,
    check_trail,
    deploy,
    request,
    review_test_and_approve,
    trail,
)
from tests.unit.fakes import FakeClock
from workflows import process
from workflows.audit import ChainBreak
from workflows.errors import StaleChange, TransitionNotAllowed

WRITERS = 8
LIFECYCLE = [
    "requested",
    "submitted",
    "reviewed",
    "tested",
    "approved",
    "authorised",
    "deployment_started",
    "outcome_recorded",
    "closed",
]


def _all_at_once(work: Callable[[int], object], count: int = WRITERS) -> list[object]:
    """Run work(0..count-1) in threads released together; each result or the error raised."""
    start = threading.Barrier(count)

    def run(index: int) -> object:
        start.wait()
        try:
            return work(index)
        except Exception as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_writers_on_different_changes_extend_one_unbroken_chain(
    engine: Engine, clock: FakeClock
) -> None:
    numbers = [request(engine, clock, f"Change {i}").number for i in range(WRITERS)]

    def take_to_closed(index: int) -> object:
        review_test_and_approve(engine, clock, numbers[index])
        return deploy(engine, clock, numbers[index])

    results = _all_at_once(take_to_closed)

    assert [r for r in results if isinstance(r, Exception)] == []
    events = trail(engine)
    assert [e.seq for e in events] == list(range(1, WRITERS * len(LIFECYCLE) + 1))
    for number in numbers:
        ref = f"CHG-{number:04d}"
        assert [e.entry.action for e in events if e.entry.ref == ref] == LIFECYCLE
    assert check_trail(engine) == (len(events), None)


def test_of_writers_racing_on_one_change_exactly_one_wins(engine: Engine, clock: FakeClock) -> None:
    number = request(engine, clock).number

    def cancel(index: int) -> object:
        uow = SqlUnitOfWork(engine)
        return process.cancel(uow, clock, POLICY, number, REQUESTER, reason=f"Attempt {index}")

    results = _all_at_once(cancel)

    losers = [r for r in results if isinstance(r, Exception)]
    assert len(losers) == WRITERS - 1
    # A loser either saw the change cancelled already, or read it before the winner saved.
    assert all(isinstance(r, StaleChange | TransitionNotAllowed) for r in losers), losers
    actions = [e.entry.action for e in trail(engine)]
    assert actions == ["requested", "submitted", "cancelled"]
    assert check_trail(engine) == (3, None)


def test_the_trail_verifies_intact_while_writers_append(engine: Engine, clock: FakeClock) -> None:
    writing = threading.Event()
    writing.set()
    verdicts: list[ChainBreak | None] = []

    def verify_until_done() -> None:
        while writing.is_set():
            verdicts.append(check_trail(engine)[1])

    reader = threading.Thread(target=verify_until_done)
    reader.start()
    try:
        results = _all_at_once(lambda i: request(engine, clock, f"Change {i}"))
    finally:
        writing.clear()
        reader.join()

    assert [r for r in results if isinstance(r, Exception)] == []
    assert verdicts and set(verdicts) == {None}
    assert check_trail(engine) == (2 * WRITERS, None)
