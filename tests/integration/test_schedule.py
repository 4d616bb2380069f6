"""The schedule on a real database (SQLite and PostgreSQL): the repository keeps each
change's place in time as the change moves, finds what a window holds from the weeks it
touches, draws again the cards of the changes a move collides with, and the migration books
the changes that existed before it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, insert, select, text
from sqlmodel import Session

from bot import queries
from storage import driver, migrate
from storage.db import is_sqlite, make_engine
from storage.outbox import PublicationRow
from storage.repositories import SqlChanges
from storage.rows import change_document
from storage.tables import ChangeRow, ScheduleRow
from storage.uow import SqlUnitOfWork
from tests.integration.changes import (
    APPROVER,
    PEER,
    POLICY,
    REQUESTER,
    WINDOW,
    an_old_row,
    deploy,
    normal_details,
    review_test_and_approve,
)
from tests.unit.builders import emergency_details
from tests.unit.fakes import FakeClock, FakeUnitOfWork
from workflows import followup, process
from workflows.model import Change, Level, Outcome, Stage, Window
from workflows.ports import ChangeRepository, UnitOfWork
from workflows.schedule import Booking, Conflict, weeks


def a_request(engine: Engine, clock: FakeClock, **fields: object) -> Change:
    return process.request_change(
        SqlUnitOfWork(engine), clock, POLICY, REQUESTER, normal_details(**fields)
    ).change


def scheduled(engine: Engine, window: Window, **kw: object) -> list[tuple[int, tuple[str, ...]]]:
    with Session(engine) as session:
        found = SqlChanges(session).scheduled(window, **kw)  # type: ignore[arg-type]
    return [(b.number, b.services) for b in found]


def conflicts_of(engine: Engine, number: int) -> list[int]:
    with Session(engine) as session:
        changes = SqlChanges(session)
        return [c.other.number for c in changes.conflicts(changes.get(number))]


def test_a_window_finds_the_changes_booked_in_it_and_no_others(engine: Engine) -> None:
    clock = FakeClock()
    a_request(engine, clock, services=("payments", "ledger"))
    later = Window(WINDOW.start + timedelta(days=9), WINDOW.end + timedelta(days=9))
    a_request(engine, clock, services=("search",), window=later)
    long = Window(WINDOW.start - timedelta(days=3), WINDOW.end + timedelta(days=12))
    a_request(engine, clock, services=("Ledger",), window=long)  # three weeks, one row a week

    assert scheduled(engine, WINDOW) == [(3, ("ledger",)), (1, ("payments", "ledger"))]
    assert scheduled(engine, later) == [(3, ("ledger",)), (2, ("search",))]
    assert scheduled(engine, WINDOW, services=["ledger"]) == [(3, ("ledger",)), (1, ("ledger",))]
    assert scheduled(engine, Window(WINDOW.end, WINDOW.end + timedelta(hours=1))) == [
        (3, ("ledger",))
    ]


def test_the_schedule_follows_the_change_as_it_moves(engine: Engine) -> None:
    clock = FakeClock()
    first = a_request(engine, clock)
    second = a_request(engine, clock)
    assert conflicts_of(engine, first.number) == [second.number]

    later = Window(WINDOW.start + timedelta(days=1), WINDOW.end + timedelta(days=1))
    process.edit(
        SqlUnitOfWork(engine),
        clock,
        POLICY,
        second.number,
        REQUESTER,
        normal_details(window=later),
    )
    assert conflicts_of(engine, first.number) == []
    assert scheduled(engine, later) == [(second.number, ("payments",))]

    third = a_request(engine, clock)
    review_test_and_approve(engine, clock, third.number)
    assert conflicts_of(engine, first.number) == [third.number]
    deploy(engine, clock, third.number)  # its window is no longer occupied
    assert conflicts_of(engine, first.number) == []
    assert [n for n, _ in scheduled(engine, WINDOW)] == [first.number, third.number]
    assert scheduled(engine, WINDOW, occupying=True) == [(first.number, ("payments",))]

    process.cancel(SqlUnitOfWork(engine), clock, POLICY, first.number, REQUESTER, reason="Moved.")
    assert [n for n, _ in scheduled(engine, WINDOW)] == [third.number]


def test_a_request_into_a_window_draws_the_other_card_again(engine: Engine) -> None:
    clock = FakeClock()
    first = a_request(engine, clock)
    shown_at = clock.now()
    with Session(engine) as session:  # its card was posted and is up to date
        session.execute(
            PublicationRow.__table__.update()  # type: ignore[attr-defined]
            .values(thread_ts="1.0001", channel="C0CHANGES", card_version=1, due_at=None)
            .where(text("number = :n")),
            {"n": first.number},
        )
        session.commit()

    clock.advance(minutes=5)
    a_request(engine, clock)

    with Session(engine) as session:
        row = session.get(PublicationRow, first.number)
        assert row is not None
        assert row.refresh_at == clock.now() and row.due_at == clock.now() > shown_at
        assert row.card_version == 1  # the change itself did not change


def test_a_save_that_leaves_the_change_where_it_was_writes_no_schedule_rows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    change = a_request(engine, clock)
    statements: list[str] = []
    with Session(engine) as session:
        changes = SqlChanges(session)
        found = changes.get(change.number)
        found.stage = Stage.TEST  # not where it is in time
        connection = session.connection()

        def seen(_c: object, _cur: object, statement: str, *_a: object) -> None:
            statements.append(statement)

        def run(connection: Connection, sql: str, *args: Any, **kwargs: Any) -> Any:
            seen(None, None, sql)  # a statement sent to the driver, past SQLAlchemy's events
            return driver_run(connection, sql, *args, **kwargs)

        driver_run = driver.run
        monkeypatch.setattr(driver, "run", run)
        event.listen(connection, "before_cursor_execute", seen)
        changes.save(found)
        event.remove(connection, "before_cursor_execute", seen)
        session.commit()
    assert any("update changes" in s.lower() for s in statements), statements  # it was seen
    assert not [s for s in statements if "schedule" in s.lower()], statements


def test_upgrading_books_the_changes_that_existed_before(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    created = datetime(2026, 11, 20, tzinfo=UTC)
    try:
        migrate.upgrade(engine, "0007")
        rows = [
            (1, "approve", normal_details(services=("payments", "Ledger")), None),
            (2, "cancelled", normal_details(), None),
            (3, "deploy", normal_details(), "successful"),
            (4, "review", normal_details(window=None), None),
        ]
        with engine.begin() as connection:
            for number, stage, details, outcome in rows:
                document = change_document(Change(number, details, "UALICE", created))
                document["outcome"] = outcome
                connection.execute(
                    insert(ChangeRow.__table__).values(  # type: ignore[attr-defined]
                        an_old_row(number, stage, document, created, pull_request="")
                    )
                )

        migrate.upgrade(engine)

        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT number, service, occupies FROM schedule ORDER BY number, service")
            ).all()
        assert [tuple(r) for r in found] == [
            (1, "ledger", True),
            (1, "payments", True),
            (3, "payments", False),
        ]
        with Session(engine) as session:
            assert [b.number for b in SqlChanges(session).scheduled(WINDOW)] == [1, 3]
            # The changes themselves are as they were inserted: the migration only booked them.
            assert [
                tuple(r)
                for r in session.execute(
                    select(ChangeRow.number, ChangeRow.stage).order_by(ChangeRow.number)
                )
            ] == [(n, stage) for n, stage, _, _ in rows]
    finally:
        engine.dispose()


def test_upgrading_books_the_changes_that_name_no_services(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    created = datetime(2026, 11, 20, tzinfo=UTC)
    long = Window(WINDOW.start, WINDOW.start + timedelta(days=15))  # three weeks
    try:
        migrate.upgrade(engine, "0016")
        rows = [
            (1, "approve", emergency_details(window=WINDOW), None),
            (2, "closed", emergency_details(window=long), "successful"),
            (3, "cancelled", emergency_details(window=WINDOW), None),
            (4, "approve", emergency_details(), None),
            (5, "review", normal_details(), None),  # booked before, on its service
        ]
        with engine.begin() as connection:
            for number, stage, details, outcome in rows:
                document = change_document(Change(number, details, "UALICE", created))
                document["outcome"] = outcome
                kind = details.classification.value
                connection.execute(
                    insert(ChangeRow.__table__).values(  # type: ignore[attr-defined]
                        an_old_row(number, stage, document, created, classification=kind)
                    )
                )
            (week,) = weeks(WINDOW)
            connection.execute(
                insert(ScheduleRow.__table__).values(  # type: ignore[attr-defined]
                    number=5,
                    service="payments",
                    week=week,
                    starts_at=WINDOW.start,
                    ends_at=WINDOW.end,
                    occupies=True,
                )
            )

        migrate.upgrade(engine)

        query = text("SELECT number, service, week, occupies FROM schedule ORDER BY number, week")
        with engine.connect() as connection:
            found = [tuple(r) for r in connection.execute(query)]
        assert found == [
            (1, "", week, True),
            (2, "", week, False),
            (2, "", week + 1, False),
            (2, "", week + 2, False),
            (5, "payments", week, True),
        ]
        assert scheduled(engine, long) == [(1, ()), (2, ()), (5, ("payments",))]
        assert scheduled(engine, long, services=["payments"]) == [(5, ("payments",))]

        config = Config()
        config.set_main_option("script_location", str(migrate.MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0016")
        assert scheduled(engine, long) == [(5, ("payments",))]
    finally:
        engine.dispose()


# -- the planner reads the weeks asked about through the indexes --------------------------------


def _a_year_of_bookings(engine: Engine) -> None:
    """A year of changes, twelve a day on eight services, one in fifty still open, with their
    schedule rows and the planner's statistics of them (their documents are not read)."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    services = ("payments", "ledger", "search", "auth", "dns", "mobile", "billing", "checkout")
    rows = []
    for n in range(12 * 365):
        begins = start + timedelta(hours=2 * n)
        window = Window(begins, begins + timedelta(hours=1))
        rows += [
            {
                "number": n + 1,
                "service": services[n % len(services)],
                "week": week,
                "starts_at": window.start,
                "ends_at": window.end,
                "occupies": n % 50 == 0,
            }
            for week in weeks(window)
        ]
    changes = [
        {
            "number": n + 1,
            "version": 0,
            "stage": "approve" if n % 50 == 0 else "closed",
            "classification": "normal",
            "title": f"Change {n + 1}",
            "requester": "UALICE",
            "implementer": "",
            "pull_request": "",
            "review_owed": False,
            "created_at": start,
            "document": {},  # not read by the schedule's queries
        }
        for n in range(12 * 365)
    ]
    with engine.begin() as connection:
        connection.execute(insert(ChangeRow.__table__), changes)  # type: ignore[attr-defined]
        connection.execute(insert(ScheduleRow.__table__), rows)  # type: ignore[attr-defined]
        connection.execute(text("ANALYZE"))


def _plan_of(engine: Engine, read: Callable[[SqlChanges], object]) -> str:
    """The plan of the statement `read` sends, as the engine would run it now."""
    sent: list[tuple[str, Any]] = []

    def capture(_c: object, _cur: object, statement: str, parameters: Any, *_a: object) -> None:
        sent.append((statement, parameters))

    with Session(engine) as session:
        connection = session.connection()
        event.listen(connection, "before_cursor_execute", capture)
        read(SqlChanges(session))
        event.remove(connection, "before_cursor_execute", capture)
        (statement, parameters), *_ = sent
        explain = "EXPLAIN QUERY PLAN " if is_sqlite(engine) else "EXPLAIN "
        plan = connection.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(str(row[-1]) for row in plan)


def test_a_month_of_the_calendar_is_read_through_the_weeks_index(engine: Engine) -> None:
    _a_year_of_bookings(engine)
    month = Window(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))

    plan = _plan_of(engine, lambda changes: changes.scheduled(month))

    assert "ix_schedule_week_ends" in plan, plan


def test_a_conflict_check_reads_only_the_open_bookings_of_its_services(engine: Engine) -> None:
    _a_year_of_bookings(engine)
    clock = FakeClock()
    mine = Window(datetime(2026, 6, 3, 10, tzinfo=UTC), datetime(2026, 6, 3, 12, tzinfo=UTC))
    change = Change(
        0, normal_details(services=("payments", "ledger"), window=mine), "U1", clock.now()
    )

    plan = _plan_of(engine, lambda changes: changes.conflicts(change))

    # The partial index of open bookings: the query's `occupies` matches its predicate.
    assert "ix_schedule_occupying" in plan, plan


def test_a_booking_names_its_services_in_the_order_the_change_did(engine: Engine) -> None:
    clock = FakeClock()
    long = Window(WINDOW.start, WINDOW.start + timedelta(days=15))  # three weeks' rows
    a_request(engine, clock, services=("search", "payments", "ledger"), window=long)
    assert scheduled(engine, long) == [(1, ("search", "payments", "ledger"))]


def test_an_emergency_with_a_window_and_no_services_is_saved(
    engine: Engine, clock: FakeClock
) -> None:
    details = emergency_details(window=WINDOW)

    change = process.request_change(SqlUnitOfWork(engine), clock, POLICY, REQUESTER, details)

    with Session(engine) as session:
        assert SqlChanges(session).get(change.change.number).details.window == WINDOW


# -- a change that names no services ------------------------------------------------------------


def an_emergency(engine: Engine, clock: FakeClock, window: Window) -> Change:
    """An emergency with a window and no services, as one declared mid-incident may be."""
    details = emergency_details(window=window)
    return process.request_change(SqlUnitOfWork(engine), clock, POLICY, REQUESTER, details).change


def test_an_emergency_naming_no_services_is_on_the_calendar_of_every_week_it_touches(
    engine: Engine, clock: FakeClock
) -> None:
    long = Window(WINDOW.start, WINDOW.start + timedelta(days=15))  # three weeks' rows
    emergency = an_emergency(engine, clock, long)
    named = a_request(engine, clock)
    later = Window(long.end - timedelta(hours=1), long.end)

    assert scheduled(engine, WINDOW) == [(emergency.number, ()), (named.number, ("payments",))]
    assert scheduled(engine, long, occupying=True) == scheduled(engine, WINDOW)
    assert scheduled(engine, later) == [(emergency.number, ())]
    # A service's calendar is of the changes that name it.
    assert scheduled(engine, WINDOW, services=["payments"]) == [(named.number, ("payments",))]

    process.cancel(SqlUnitOfWork(engine), clock, POLICY, emergency.number, REQUESTER, reason="No.")
    assert scheduled(engine, long) == [(named.number, ("payments",))]


def test_an_emergency_naming_no_services_conflicts_with_nothing(
    engine: Engine, clock: FakeClock
) -> None:
    emergency = an_emergency(engine, clock, WINDOW)
    named = a_request(engine, clock)
    another = an_emergency(engine, clock, WINDOW)

    assert conflicts_of(engine, emergency.number) == []
    assert conflicts_of(engine, named.number) == []
    assert conflicts_of(engine, another.number) == []


def test_an_emergency_naming_no_services_that_moves_draws_no_other_card_again(
    engine: Engine, clock: FakeClock
) -> None:
    first = an_emergency(engine, clock, WINDOW)
    second = an_emergency(engine, clock, WINDOW)
    with Session(engine) as session:  # the first's card was posted and is up to date
        session.execute(
            PublicationRow.__table__.update()  # type: ignore[attr-defined]
            .values(thread_ts="1.0001", channel="C0CHANGES", card_version=1, due_at=None)
            .where(text("number = :n")),
            {"n": first.number},
        )
        session.commit()

    clock.advance(minutes=5)
    process.cancel(SqlUnitOfWork(engine), clock, POLICY, second.number, REQUESTER, reason="No.")

    with Session(engine) as session:
        row = session.get(PublicationRow, first.number)
        assert row is not None
        assert row.refresh_at is None and row.due_at is None


# -- the fake repository finds what the database finds ------------------------------------------

LONG = Window(WINDOW.start - timedelta(days=3), WINDOW.end + timedelta(days=12))
LATER = Window(WINDOW.start + timedelta(days=9), WINDOW.end + timedelta(days=9))


def book_a_fortnight(uow: UnitOfWork, clock: FakeClock) -> None:
    """The same changes on either repository: over one week or three, on several services or
    none, one deployed, one cancelled, one with no window."""
    for details in (
        normal_details(services=("payments", "Ledger")),
        normal_details(services=("search",), window=LATER),
        normal_details(services=("ledger",), window=LONG),
        emergency_details(window=LONG),
        emergency_details(window=WINDOW),
        emergency_details(),
        normal_details(services=("ledger", "search")),
        normal_details(services=("search",)),
    ):
        process.request_change(uow, clock, POLICY, REQUESTER, details)
    process.record_review(uow, clock, POLICY, 7, PEER, assessment="Safe.", risk=Level.LOW)
    process.add_test_evidence(uow, clock, POLICY, 7, REQUESTER, evidence="Staging is green.")
    process.approve(uow, clock, POLICY, 7, APPROVER, comment="Go ahead.")
    process.start_deployment(uow, clock, POLICY, 7, REQUESTER)
    followup.record_outcome(uow, clock, POLICY, 7, REQUESTER, outcome=Outcome.SUCCESSFUL)
    process.cancel(uow, clock, POLICY, 8, REQUESTER, reason="Not needed.")


def answers(
    changes: ChangeRepository,
) -> tuple[list[list[Booking]], list[tuple[Conflict, ...]]]:
    """What the calendar and the conflict check ask of the schedule, and what they are told."""
    asked: list[tuple[Window, dict[str, Any]]] = [
        (WINDOW, {}),
        (LONG, {}),
        (LATER, {}),
        (LONG, {"occupying": True}),
        (WINDOW, {"services": ["ledger"]}),
        (LONG, {"services": [" SEARCH", "payments"], "occupying": True}),
        (LONG, {"services": []}),
        (LONG, {"services": [" "]}),  # a blank name: no service, not the changes naming none
    ]
    calendars = [changes.scheduled(window, **kw) for window, kw in asked]
    return calendars, [changes.conflicts(changes.get(number)) for number in range(1, 9)]


def test_the_fake_repository_finds_what_the_database_finds(engine: Engine) -> None:
    fake = FakeUnitOfWork()
    book_a_fortnight(SqlUnitOfWork(engine), FakeClock())
    book_a_fortnight(fake, FakeClock())

    with Session(engine) as session:
        stored = answers(SqlChanges(session))

    assert answers(fake.changes) == stored
    calendars, conflicts = stored
    assert [b.number for b in calendars[1]] == [3, 4, 1, 5, 7, 2]
    # On ledger, 1 and 3 collide; 7 did too until it was deployed. The emergencies collide
    # with nothing.
    assert [[c.other.number for c in found] for found in conflicts] == [
        [3],
        [],
        [1],
        [],
        [],
        [],
        [],
        [],
    ]


def test_a_lists_conflicts_are_read_once_for_the_changes_booked_alike(
    engine: Engine,
) -> None:
    """`/change list` shows each listed change's conflicts and must answer within Slack's 3
    seconds: on a release night thirty changes share a window, and a read for each (every one
    finding all the others) took seconds. The answers are each change's own conflicts."""
    clock = FakeClock()
    later = Window(WINDOW.start + timedelta(days=2), WINDOW.end + timedelta(days=2))
    night = [a_request(engine, clock, services=("payments",)) for _ in range(12)]
    ledger = a_request(engine, clock, services=("ledger", "payments"))
    elsewhere = a_request(engine, clock, services=("search",))
    apart = a_request(engine, clock, services=("payments",), window=later)
    listed = [*night, ledger, elsewhere, apart]
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "schedule" in statement.lower():
            reads.append(statement)

    with Session(engine) as session:
        changes = SqlChanges(session)
        expected = {
            change.number: found for change in listed if (found := changes.conflicts(change))
        }
        event.listen(engine, "before_cursor_execute", seen)
        try:
            found = queries.conflicts_of(session, listed)
        finally:
            event.remove(engine, "before_cursor_execute", seen)

    assert found == expected
    assert set(found) == {c.number for c in [*night, ledger]}  # search and the later one: none
    assert [c.other.number for c in found[ledger.number]] == [c.number for c in night]
    # The night's twelve in one read; the ledger change, the search one and the later one
    # (another window, or other services) in one each: not one a change.
    assert len(reads) == 4
