"""A request form Slack sends twice (its Submit retried after a slow answer, or clicked twice)
makes one change, on SQLite and PostgreSQL, one after the other or at the same moment: the
second finds the first by the form's id, and nothing more is written."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from storage.db import make_engine
from storage.tables import AuditEventRow, ChangeRow
from storage.uow import SqlUnitOfWork
from tests.integration.changes import POLICY, REQUESTER
from tests.unit.builders import normal_details
from tests.unit.fakes import FakeClock
from workflows import process
from workflows.errors import AlreadyRequested


def counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        changes = session.execute(select(func.count()).select_from(ChangeRow)).scalar_one()
        events = session.execute(select(func.count()).select_from(AuditEventRow)).scalar_one()
    return changes, events


def requested(engine: Engine, clock: FakeClock, form: str) -> int:
    uow = SqlUnitOfWork(engine)
    details = normal_details()
    return process.request_change(uow, clock, POLICY, REQUESTER, details, form=form).change.number


def test_a_form_sent_again_finds_its_change_and_writes_nothing(
    engine: Engine, clock: FakeClock
) -> None:
    first = requested(engine, clock, "V0FORM1")
    before = counts(engine)

    with pytest.raises(AlreadyRequested) as again:
        requested(engine, clock, "V0FORM1")

    assert again.value.number == first
    assert counts(engine) == before
    assert requested(engine, clock, "V0FORM2") != first  # another form is another change
    assert requested(engine, clock, "") != requested(engine, clock, "")  # no form: no limit


def test_a_form_sent_twice_at_once_makes_one_change(engine: Engine, clock: FakeClock) -> None:
    other = make_engine(engine.url.render_as_string(hide_password=False))
    start = threading.Barrier(2)

    def submit(on: Engine) -> int | AlreadyRequested:
        start.wait()
        try:
            return requested(on, clock, "V0TWICE")
        except AlreadyRequested as error:
            return error

    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(submit, [engine, other]))
    finally:
        other.dispose()

    made = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, AlreadyRequested)]
    assert len(made) == 1 and len(refused) == 1, results
    assert refused[0].number == made[0]
    assert counts(engine)[0] == 1
