"""The publisher draws a reply from the change as it stands ("2 of 2 needed"), so it must read
the change no older than the events it explains: an approval committed between its two reads
was once shown without its count (on PostgreSQL, where each statement sees what is committed
when it starts). Here that commit is made to land exactly there, every time.

On SQLite the publisher's reads take no write lock (they begin deferred, and the database is in
WAL mode): the commit lands between them there too, and they must still agree. They once held
the write lock, and a writer (the gate's rounds, on the event loop) waited for them in
SQLite's busy handler; here the approval would have been refused as "database is locked".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine, event
from sqlmodel import Session

from bot.publisher import Publisher
from standin import SlackStandIn
from storage import driver
from storage.db import make_engine
from storage.uow import SqlUnitOfWork
from tests.e2e.harness import APPROVER_GROUP, policy_toml, workspace
from tests.unit.builders import normal_details
from tests.unit.fakes import FakeClock
from workflows import process
from workflows.model import Actor, Level
from workflows.policy import parse_policy

POLICY = parse_policy(policy_toml())
CLOCK = FakeClock()
ALICE, BOB = Actor("U0ALICE"), Actor("U0BOB")
CAROL, DAVE = Actor("U0CAROL"), Actor("U0DAVE", frozenset({APPROVER_GROUP}))


@pytest.fixture
def elsewhere(engine: Engine) -> Iterator[Engine]:
    """Another replica's engine on the same database."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    yield other
    other.dispose()


async def test_an_approval_committed_between_the_publishers_reads_is_shown_with_its_count(
    engine: Engine, elsewhere: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    change = process.request_change(
        SqlUnitOfWork(engine), CLOCK, POLICY, ALICE, normal_details(risk=Level.HIGH)
    ).change
    number = change.number
    process.record_review(
        SqlUnitOfWork(engine), CLOCK, POLICY, number, BOB, assessment="Fine.", risk=Level.HIGH
    )
    process.add_test_evidence(SqlUnitOfWork(engine), CLOCK, POLICY, number, ALICE, evidence="ok")
    process.approve(SqlUnitOfWork(engine), CLOCK, POLICY, number, CAROL)  # 1 of 2

    async with SlackStandIn(workspace()) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)
        publisher = Publisher(engine, client, POLICY, CLOCK)

        # Dave's approval commits right after the publisher's first read of the change's
        # events or of the change itself, and before its second: whether it reads through
        # SQLAlchemy or hands statements to the driver (storage/driver.py), which then runs
        # them one at a time here (on PostgreSQL they go in one round trip, and another
        # transaction can commit between them there too).
        statements: list[str] = []

        def approve_after(statement: str) -> None:
            reads = ("FROM audit_events", "FROM changes")
            if statements or not statement.lstrip().upper().startswith("SELECT"):
                return
            if any(table in statement for table in reads):
                statements.append(statement)
                process.approve(SqlUnitOfWork(elsewhere), CLOCK, POLICY, number, DAVE)

        def after_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            approve_after(statement)

        def one_at_a_time(session: Session, batch: Sequence[driver.Statement]) -> None:
            for statement in batch:
                together(session, [statement])
                approve_after(statement.sql)

        together = driver.together
        monkeypatch.setattr(driver, "together", one_at_a_time)
        event.listen(engine, "after_cursor_execute", after_execute)
        try:
            await publisher.sweep()
        finally:
            event.remove(engine, "after_cursor_execute", after_execute)
        assert statements, "the publisher read nothing"
        await publisher.sweep()  # what the first sweep left for the next

        card = next(m for m in slack.messages("C0CHANGES") if change.ref in str(m["blocks"]))
        replies = [m["text"] for m in slack.thread("C0CHANGES", card["ts"])[1:]]
    [daves] = [text for text in replies if "<@U0DAVE> approved" in text]
    assert "(2 of 2 needed)" in daves, replies
    assert "FROM audit_events" in statements[0]  # read first: the change is no older
