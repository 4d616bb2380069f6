"""A reminder is recorded after it is sent; what happened to its obligation meanwhile stands.

The chaser claims an obligation, sends its reminder (a Slack call, which may take seconds),
then records it. A snooze clicked in that time, or a new owner, must not be written over by
the plan the chaser made from the obligation as it claimed it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from storage import obligations
from storage.obligations import Claimed
from storage.uow import SqlUnitOfWork
from tests.integration.changes import POLICY, REQUESTER, request, review_test_and_approve
from tests.unit.fakes import FakeClock
from workflows import followup, process
from workflows.audit import AuditEntry
from workflows.chase import Obligation, Owed, remind
from workflows.model import Outcome

LEASE = timedelta(seconds=60)


def owing_a_review(engine: Engine, clock: FakeClock) -> int:
    """A change whose deployment failed: its post-change review is owed, and chased."""
    number = request(engine, clock).number
    review_test_and_approve(engine, clock, number)
    uow = SqlUnitOfWork(engine)
    process.start_deployment(uow, clock, POLICY, number, REQUESTER)
    followup.record_outcome(
        uow, clock, POLICY, number, REQUESTER, outcome=Outcome.FAILED, notes="Error rate doubled."
    )
    return number


def claimed_when_due(engine: Engine, clock: FakeClock) -> Claimed:
    with Session(engine) as session:
        [owed] = obligations.open_obligations(session, Owed.POST_CHANGE_REVIEW)
    clock.current = owed.next_at
    with Session(engine) as session:
        [claimed] = obligations.claim_due(session, "replica-a", clock.now(), LEASE, 10)
    return claimed


def sent(engine: Engine, clock: FakeClock, claimed: Claimed) -> tuple[bool, Obligation]:
    """The reminder the chaser planned from `claimed`, recorded; and the obligation after."""
    _, planned = remind(claimed.obligation, clock.now(), followup.review_cadence(POLICY))
    entry = AuditEntry(clock.now(), "changebot", "reminder_sent", "CHG-0001", "", "", {})
    with Session(engine) as session:
        recorded = obligations.record_reminder(session, claimed, "replica-a", planned, entry)
    with Session(engine) as session:
        [after] = obligations.open_obligations(session, Owed.POST_CHANGE_REVIEW)
    return recorded, after


def test_a_reminder_recorded_plans_the_next_one(engine: Engine, clock: FakeClock) -> None:
    owing_a_review(engine, clock)
    claimed = claimed_when_due(engine, clock)

    recorded, after = sent(engine, clock, claimed)

    cadence = followup.review_cadence(POLICY)
    assert recorded
    assert after.reminders == claimed.obligation.reminders + 1
    assert after.next_at == min(claimed.obligation.next_at + cadence.every, after.deadline)


def snoozed_while_sent(engine: Engine, clock: FakeClock, choice: str) -> tuple[Claimed, Obligation]:
    """The reminder due now is claimed, and its owner snoozes the chase before it is recorded
    (from an earlier reminder's button). The claim, and the obligation as snoozed."""
    number = owing_a_review(engine, clock)
    claimed = claimed_when_due(engine, clock)
    snoozed = followup.snooze_reminder(
        SqlUnitOfWork(engine),
        clock,
        POLICY,
        Owed.POST_CHANGE_REVIEW,
        number,
        REQUESTER,
        choice=choice,
    )
    return claimed, snoozed


def test_a_snooze_past_the_next_reminder_made_while_one_was_sent_is_kept(
    engine: Engine, clock: FakeClock
) -> None:
    claimed, snoozed = snoozed_while_sent(engine, clock, "1d")

    recorded, after = sent(engine, clock, claimed)

    cadence = followup.review_cadence(POLICY)
    assert snoozed.next_at > claimed.obligation.next_at + cadence.every  # later than planned
    assert recorded
    assert after.reminders == claimed.obligation.reminders + 1  # it was sent: it counts
    assert (after.next_at, after.snoozed_until) == (snoozed.next_at, snoozed.snoozed_until)


def test_a_snooze_made_while_a_reminder_was_sent_never_brings_the_next_one_forward(
    engine: Engine, clock: FakeClock
) -> None:
    claimed, snoozed = snoozed_while_sent(engine, clock, "1h")

    recorded, after = sent(engine, clock, claimed)

    planned = claimed.obligation.next_at + followup.review_cadence(POLICY).every
    assert snoozed.next_at < planned  # an hour from now: sooner than the cadence's next
    assert recorded and after.next_at == min(planned, after.deadline)


def test_an_obligation_planned_anew_while_a_reminder_was_sent_keeps_its_new_plan(
    engine: Engine, clock: FakeClock
) -> None:
    owing_a_review(engine, clock)
    claimed = claimed_when_due(engine, clock)
    anew = replace(claimed.obligation, owner="U0DAVE", reminders=0, escalations=0)
    with Session(engine) as session:
        obligations.SqlObligations(session).update(anew)  # as owe() plans it for a new owner
        session.commit()

    recorded, after = sent(engine, clock, claimed)

    assert recorded  # the reminder to the old owner is in the audit trail
    assert (after.owner, after.reminders, after.next_at) == ("U0DAVE", 0, anew.next_at)


def test_a_reminder_is_not_recorded_once_another_replica_took_the_lease(
    engine: Engine, clock: FakeClock
) -> None:
    owing_a_review(engine, clock)
    claimed = claimed_when_due(engine, clock)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    with Session(engine) as session:
        [taken] = obligations.claim_due(session, "replica-b", clock.now(), LEASE, 10)

    recorded, after = sent(engine, clock, claimed)

    assert taken.id == claimed.id
    assert not recorded and after.reminders == claimed.obligation.reminders
