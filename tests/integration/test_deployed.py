"""The changes deployed in a period, on a real database (SQLite and PostgreSQL): the outcome's
time is kept in an indexed column as the change is saved, read back in the order of the
outcomes, and filled in by migration 0009 for the changes that had one before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import JSON, Boolean, Column, Engine, Integer, MetaData, String, Table, insert, text
from sqlmodel import Session

from storage import migrate
from storage.db import make_engine
from storage.repositories import SqlChanges
from storage.rows import change_document
from storage.tables import UTCDateTime
from tests.integration.changes import (
    an_old_row,
    deploy,
    normal_details,
    request,
    review_test_and_approve,
)
from tests.unit.fakes import FakeClock
from workflows.metrics import dora
from workflows.model import Change, Window

DAY = timedelta(days=1)
#: The changes table as migration 0008 left it (the model has moved on).
_CHANGES_0008 = Table(
    "changes",
    MetaData(),
    Column("number", Integer, primary_key=True),
    Column("version", Integer),
    Column("stage", String),
    Column("classification", String),
    Column("title", String),
    Column("requester", String),
    Column("implementer", String),
    Column("pull_request", String),
    Column("review_owed", Boolean),
    Column("created_at", UTCDateTime()),
    Column("document", JSON),
)


def deployed(engine: Engine, period: Window) -> list[tuple[int, datetime | None]]:
    with Session(engine) as session:
        return [(c.number, c.outcome_at) for c in SqlChanges(session).deployed(period, batch=2)]


def test_the_changes_deployed_in_a_period_come_in_the_order_of_their_outcomes(
    engine: Engine,
) -> None:
    clock = FakeClock()
    start = clock.now()
    numbers = [request(engine, clock, f"Change {n}").number for n in range(5)]
    for number in numbers[:4]:
        review_test_and_approve(engine, clock, number)
    for number in (numbers[2], numbers[0], numbers[3]):  # deployed a day apart, out of order
        clock.advance(days=1)
        deploy(engine, clock, number)

    everything = Window(start, start + 10 * DAY)
    assert deployed(engine, everything) == [
        (numbers[2], start + DAY),
        (numbers[0], start + 2 * DAY),
        (numbers[3], start + 3 * DAY),
    ]
    assert [n for n, _ in deployed(engine, Window(start + 2 * DAY, start + 3 * DAY))] == [
        numbers[0]
    ]
    with Session(engine) as session:
        metrics = dora(SqlChanges(session).deployed(everything), everything)
    assert metrics.deployments == 3 and metrics.fail_rate == 0


def test_upgrading_keeps_the_outcome_time_of_the_changes_deployed_before(
    empty_database_url: str,
) -> None:
    engine = make_engine(empty_database_url)
    created = datetime(2026, 11, 20, tzinfo=UTC)
    outcome_at = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    try:
        migrate.upgrade(engine, "0008")
        with engine.begin() as connection:
            for number, outcome in ((1, None), (2, outcome_at)):
                document = change_document(Change(number, normal_details(), "UALICE", created))
                document["outcome"] = "successful" if outcome else None
                document["outcome_at"] = outcome.isoformat() if outcome else None
                connection.execute(
                    insert(_CHANGES_0008).values(
                        an_old_row(
                            number,
                            "closed" if outcome else "review",
                            document,
                            created,
                            pull_request="",
                        )
                    )
                )

        migrate.upgrade(engine)

        assert deployed(engine, Window(created, created + 10 * DAY)) == [(2, outcome_at)]
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM changes")).scalar() == 2
    finally:
        engine.dispose()
