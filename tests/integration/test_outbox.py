"""The outbox remembers a failed attempt even when news brings the next one forward: the next
delivery must then look in Slack first, since the failed post may have landed after all. The
backoff starts over, so the news is shown soon."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from storage import driver, outbox
from storage.uow import one_statement
from tests.integration.changes import request, review_test_and_approve, trail
from tests.integration.locks import waiting_for_a_lock
from tests.unit.fakes import FakeClock


def test_news_brings_a_failed_publication_forward_without_forgetting_the_failure(
    engine: Engine, clock: FakeClock
) -> None:
    number = request(engine, clock).number  # its card is due
    now = clock.now()
    with Session(engine) as session:
        [claimed] = outbox.claim_due(session, "replica-a", now, timedelta(seconds=30), 10)
        later = now + timedelta(minutes=5)
        released = outbox.release(
            session, number, "replica-a", now, due_at=later, attempts=3, last_error="timeout"
        )
        assert claimed.number == number and released

        outbox.mark_due(session, number, now + timedelta(seconds=1))  # the change moved on
        session.commit()
        [again] = outbox.claim_due(
            session, "replica-a", now + timedelta(seconds=2), timedelta(seconds=30), 10
        )
    assert again.attempts == 1  # remembered, so looked for in Slack; the backoff starts over


def test_a_publication_taken_over_from_a_lapsed_lease_is_delivered_carefully(
    engine: Engine, clock: FakeClock
) -> None:
    """The replica that held it may have posted before it died: the taker looks first."""
    number = request(engine, clock).number
    now = clock.now()
    lease = timedelta(seconds=30)
    with Session(engine) as session:
        [first] = outbox.claim_due(session, "replica-a", now, lease, 10)
        [taken] = outbox.claim_due(session, "replica-b", now + timedelta(minutes=1), lease, 10)
    assert first.number == taken.number == number
    assert first.attempts == 0 and taken.attempts == 1


def test_leases_handed_back_at_shutdown_are_delivered_carefully(
    engine: Engine, clock: FakeClock
) -> None:
    number = request(engine, clock).number
    now = clock.now()
    with Session(engine) as session:
        outbox.claim_due(session, "replica-a", now, timedelta(seconds=30), 10)
        assert outbox.release_all(session, "replica-a") == 1
        [again] = outbox.claim_due(session, "replica-b", now, timedelta(seconds=30), 10)
    assert again.number == number and again.attempts == 1


def test_news_written_while_a_publication_is_delivered_keeps_it_due(
    engine: Engine, clock: FakeClock
) -> None:
    """On PostgreSQL a writer's audit event is invisible to the release until it commits;
    what the release does see is that mark_due changed the row since the claim."""
    number = request(engine, clock).number
    now = clock.now()
    with Session(engine) as session:
        [claimed] = outbox.claim_due(session, "replica-a", now, timedelta(seconds=30), 10)
        outbox.record_progress(session, number, "replica-a", now, published_seq=10**6)
        outbox.mark_due(session, number, now + timedelta(seconds=1))  # a step, mid-delivery
        session.commit()
        finished(session, claimed, now)
        [again] = outbox.claim_due(
            session, "replica-b", now + timedelta(seconds=2), timedelta(seconds=30), 10
        )
    assert again.number == number


def test_a_redraw_asked_while_a_card_is_delivered_is_not_lost_at_the_same_moment(
    engine: Engine, clock: FakeClock
) -> None:
    """Another change comes to overlap this one while its card is being drawn, at the very
    moment the card was claimed for (a clock that has not moved): the card stays due."""
    number = request(engine, clock).number
    now = clock.now()
    with Session(engine) as session:
        [claimed] = outbox.claim_due(session, "replica-a", now, timedelta(seconds=30), 10)
        assert claimed.due_at == now
        outbox.record_progress(session, number, "replica-a", now, published_seq=10**6)
        outbox.redraw(session, [number], now)
        session.commit()
        # The card drawn as loaded before the redraw: no time of its own to be drawn again.
        outbox.record_progress(session, number, "replica-a", now, card_version=0, refresh_at=None)
        finished(session, claimed, now)
        [again] = outbox.claim_due(session, "replica-b", now, timedelta(seconds=30), 10)
    assert again.number == number


def test_a_redraw_asked_while_a_card_is_drawn_is_drawn_after_it(
    engine: Engine, clock: FakeClock
) -> None:
    """Another change comes to overlap this one after its card was claimed and drawn, before
    the delivery is written down: the card drawn has no time of its own to be drawn again,
    but the redraw asked for meanwhile must stand, or the card would never show the overlap
    (the next delivery draws a card only if its change moved or its redraw time came)."""
    number = request(engine, clock).number
    now = clock.now()
    asked = now + timedelta(seconds=1)
    with Session(engine) as session:
        [claimed] = outbox.claim_due(session, "replica-a", now, timedelta(seconds=30), 10)
        outbox.redraw(session, [number], asked)  # another change's delivery, meanwhile
        session.commit()
        drawn = outbox.card_drawn(0, None, claimed.refresh_at)
        finished(session, claimed, now, {"published_seq": 10**6, **drawn})
        [again] = outbox.claim_due(
            session, "replica-b", asked + timedelta(seconds=1), timedelta(seconds=30), 10
        )
    assert again.card_version == 0 and again.published_seq == 10**6  # the progress is kept
    assert again.refresh_at == asked  # and the redraw asked for meanwhile


def test_a_redraw_asked_at_the_very_time_the_card_was_claimed_with_is_drawn_after_it(
    engine: Engine, clock: FakeClock
) -> None:
    """A redraw at T, the card claimed (seeing T), another redraw at T meanwhile (a clock
    that has not moved): the second must still stand when the delivery is written down."""
    number = request(engine, clock).number
    now = clock.now()
    with Session(engine) as session:
        outbox.redraw(session, [number], now)
        session.commit()
        [claimed] = outbox.claim_due(session, "replica-a", now, timedelta(seconds=30), 10)
        assert claimed.refresh_at == now
        outbox.redraw(session, [number], now)
        session.commit()
        finished(
            session,
            claimed,
            now,
            {"published_seq": 10**6, **outbox.card_drawn(0, None, claimed.refresh_at)},
        )
        [again] = outbox.claim_due(session, "replica-b", now, timedelta(seconds=30), 10)
    assert again.refresh_at is not None and again.refresh_at <= now


def test_a_card_drawn_with_nothing_asked_meanwhile_takes_its_own_redraw_time(
    engine: Engine, clock: FakeClock
) -> None:
    request(engine, clock)
    now = clock.now()
    opens = now + timedelta(hours=3)  # break-glass opens then, say
    with Session(engine) as session:
        [claimed] = outbox.claim_due(session, "replica-a", now, timedelta(seconds=30), 10)
        finished(
            session,
            claimed,
            now,
            {"published_seq": 10**6, **outbox.card_drawn(0, opens, claimed.refresh_at)},
        )
        [again] = outbox.claim_due(session, "replica-b", opens, timedelta(seconds=30), 10)
    assert again.refresh_at == opens


def test_a_step_of_two_events_marks_its_change_due_once(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An approval that meets the quorum writes two events (approved, authorised); the
    second has nothing to add to the first's mark, so it costs no statements of its own."""
    number = request(engine, clock).number
    publications: list[str] = []

    def count(conn: object, cursor: object, statement: str, *_: object) -> None:
        if "publications" in statement:
            publications.append(statement.split()[0])

    def counted(session: Session, statements: Sequence[driver.Statement]) -> None:
        for statement in statements:  # sent to the driver, past SQLAlchemy's events
            count(None, None, statement.sql)
        together(session, statements)

    together = driver.together
    monkeypatch.setattr(driver, "together", counted)
    event.listen(engine, "before_cursor_execute", count)
    try:
        approved = review_test_and_approve(engine, clock, number)  # review, test, approve
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [e.entry.action for e in trail(engine)[-2:]] == ["approved", "authorised"]
    assert approved.stage.value == "deploy"
    # One write per step (three steps), which creates or brings forward the publication.
    assert publications == ["INSERT"] * 3
    with Session(engine) as session:
        [due] = outbox.claim_due(session, "replica-a", clock.now(), timedelta(seconds=30), 10)
    assert due.number == number and due.published_seq == 0


def test_a_claim_reads_what_it_leased_in_one_select_however_many_rows(
    engine: Engine, clock: FakeClock
) -> None:
    """Rows are translated before the claim commits: after it, each one would be loaded again
    (one SELECT per row claimed, which made a sweep's claim four times as slow)."""
    numbers = [request(engine, clock).number for _ in range(5)]
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *_: object) -> None:
        statements.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", count)
    try:
        with Session(engine) as session:
            due = outbox.claim_due(session, "replica-a", clock.now(), timedelta(seconds=30), 10)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sorted(p.number for p in due) == numbers

    assert statements.count("SELECT") == 1, statements


def test_news_committed_while_a_release_waits_for_its_row_keeps_the_publication_due(
    engine: Engine, clock: FakeClock
) -> None:
    """The release is one statement, run without a transaction around it: a writer holding
    the row (its mark_due not yet committed) makes it wait, and once that writer commits,
    the release must see the row as the writer left it (PostgreSQL evaluates it again on
    that row; SQLite's writers take turns), and leave the news due."""
    number = request(engine, clock).number
    now = clock.now()
    with Session(engine) as session:
        [claimed] = outbox.claim_due(session, "replica-a", now, timedelta(seconds=30), 10)
    released: list[bool] = []

    def release() -> None:
        with Session(one_statement(engine)) as session:
            every_event = {"published_seq": 10**6}  # as far as the delivery knows
            released.append(finished(session, claimed, now, every_event))

    with Session(engine) as writer:
        outbox.mark_due(writer, number, now + timedelta(seconds=1))  # the row is the writer's
        releasing = threading.Thread(target=release)
        releasing.start()
        releasing.join(timeout=0.5)
        assert releasing.is_alive(), "the release did not wait for the writer"
        writer.commit()
    releasing.join(timeout=10)
    assert released == [True]

    with Session(engine) as session:
        [again] = outbox.claim_due(
            session, "replica-b", now + timedelta(seconds=2), timedelta(seconds=30), 10
        )
    assert again.number == number and again.published_seq == 10**6


def finished(
    session: Session,
    claimed: outbox.Publication,
    now: datetime,
    progress: dict[str, object] | None = None,
) -> bool:
    """Replica A's delivery of `claimed`, done: its lease given back with `progress`."""
    return outbox.release(
        session,
        claimed.number,
        "replica-a",
        now,
        due_at=None,
        claimed_due_at=claimed.due_at,
        progress=progress,
    )


def test_a_redraw_locks_its_cards_in_the_order_of_their_numbers(
    engine: Engine, clock: FakeClock, backend: str
) -> None:
    """Replicas redrawing the cards of changes that all conflict with each other lock the
    same rows; each in its own order, they deadlocked (and took a person's approval with
    them). A redraw waiting for a card another transaction holds has taken every card
    numbered below it, and none above: rows whose latest versions lie in the opposite
    order, as updates leave them, make no difference."""
    if backend == "sqlite":
        pytest.skip("row locks: SQLite has one writer at a time")
    numbers = [request(engine, clock).number for _ in range(6)]
    with engine.begin() as connection:  # the latest versions of the rows in reverse order
        for number in reversed(numbers):
            connection.execute(
                text("UPDATE publications SET attempts = attempts WHERE number = :n"),
                {"n": number},
            )
    held = numbers[2]
    with engine.connect() as holder:
        holder.execute(
            text("SELECT number FROM publications WHERE number = :n FOR UPDATE"), {"n": held}
        )

        def redraw() -> None:
            with Session(engine) as session:
                outbox.redraw(session, numbers, clock.now())
                session.commit()

        redrawing = threading.Thread(target=redraw)
        redrawing.start()
        try:
            waiting_for_a_lock(engine)
            with engine.connect() as looker:
                free = looker.execute(
                    text(
                        "SELECT number FROM publications WHERE number = ANY(:numbers) "
                        "ORDER BY number FOR UPDATE SKIP LOCKED"
                    ),
                    {"numbers": numbers},
                ).scalars()
                assert list(free) == numbers[3:]
                looker.rollback()
        finally:
            holder.rollback()
            redrawing.join(timeout=30)
    assert not redrawing.is_alive()
