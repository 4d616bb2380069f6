from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.builders import Desk, a_policy
from tests.unit.fakes import FakeClock, FakeUnitOfWork
from workflows.audit import verify
from workflows.policy import Policy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def policy() -> Policy:
    return THE_POLICY


#: Parsed once: a Policy is frozen, and a test that needs another one builds its own.
THE_POLICY = a_policy()


@pytest.fixture
def uow() -> Iterator[FakeUnitOfWork]:
    """An in-memory store whose audit trail must still verify when the test is done."""
    uow = FakeUnitOfWork()
    yield uow
    pending = (
        uow.changes.pending or uow.audit.pending or uow.obligations.pending or uow.proposals.pending
    )
    assert not pending, "a use case left writes uncommitted"
    events = uow.audit.events
    head = (events[-1].seq, events[-1].hash) if events else None
    checked, broken = verify(events, head)
    assert broken is None, str(broken)
    assert checked == len(events)


@pytest.fixture
def desk(uow: FakeUnitOfWork, clock: FakeClock, policy: Policy) -> Desk:
    return Desk(uow, clock, policy)
