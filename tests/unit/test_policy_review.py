"""The policy's own review: owed by its owner a review period after the last one, chased
weekly, made due at once when a change contributed to an incident, and recorded."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    BOB,
    EMMA,
    NOW,
    POLLY,
    Desk,
    a_policy,
    a_post_change_review,
    emergency_details,
    nothing_written,
)
from tests.unit.fakes import FakeClock, FakeUnitOfWork
from workflows import followup
from workflows.chase import Cadence, Obligation, Owed, is_due, remind
from workflows.errors import NotAllowed, NotFound, ValidationFailed
from workflows.followup import POLICY_REF, WEEK
from workflows.model import Actor, Outcome

#: Reviewed a year before 2025-12-01; the clock starts on 2026-11-23, a week before that.
YEARLY = 'name = "Test policy"\nowner = "UOWNER"\nlast_reviewed = 2025-12-01\nreview_every = "365d"'
DUE = datetime(2026, 12, 1, tzinfo=UTC)
WEEKLY = Cadence(WEEK, WEEK)  # how the scheduler chases the policy review


@pytest.fixture
def desk(desk: Desk) -> Desk:
    desk.policy = a_policy(policy=YEARLY)
    return desk


def policy_events(desk: Desk) -> list[tuple[str, str, dict[str, object]]]:
    events = (e.entry for e in desk.uow.audit.events if e.entry.ref == POLICY_REF)
    return [(e.action, e.actor, e.details) for e in events]


def test_the_policy_review_is_owed_by_the_policy_owner_a_review_period_after_the_last(
    desk: Desk,
) -> None:
    owed = desk.ensure_policy_review()
    assert owed == Obligation(Owed.POLICY_REVIEW, POLLY.user_id, deadline=DUE, next_at=DUE)
    assert desk.owed(Owed.POLICY_REVIEW) == owed


def test_the_policy_owner_is_first_reminded_on_the_due_date_then_weekly(desk: Desk) -> None:
    owed = desk.ensure_policy_review()
    desk.clock.advance(seconds=(DUE - NOW).total_seconds() - 1)
    assert not is_due(owed, desk.clock.now())
    sent = []
    for _ in range(3):
        desk.clock.advance(seconds=(owed.next_at - desk.clock.now()).total_seconds())
        assert is_due(owed, desk.clock.now())
        reminder, owed = remind(owed, desk.clock.now(), WEEKLY)
        sent.append(reminder.sent_at)
    assert sent == [DUE, DUE + WEEK, DUE + 2 * WEEK]
    assert owed.next_at == DUE + 3 * WEEK


def test_a_policy_review_overdue_when_the_bot_starts_is_reminded_at_once_and_once(
    desk: Desk,
) -> None:
    desk.clock.advance(days=100)  # the bot was down across many weekly reminders
    owed = desk.ensure_policy_review()
    reminder, planned = remind(owed, desk.clock.now(), WEEKLY)
    assert reminder.overdue_by == desk.clock.now() - DUE
    assert planned.next_at == desk.clock.now() + WEEK
    assert not is_due(planned, desk.clock.now())


def test_ensuring_the_policy_review_again_keeps_the_one_owed(desk: Desk) -> None:
    first = desk.ensure_policy_review()
    desk.clock.advance(days=9)
    _, chased = remind(first, desk.clock.now(), WEEKLY)
    with desk.uow:  # as the sweep records a reminder
        desk.uow.obligations.update(chased)
        desk.uow.commit()
    commits = desk.uow.commits
    assert desk.ensure_policy_review() == chased
    assert desk.uow.commits == commits


def test_a_new_policy_owner_takes_over_the_policy_review(desk: Desk) -> None:
    desk.ensure_policy_review()
    desk.policy = a_policy(policy=YEARLY.replace("UOWNER", "UNEWOWNER"))
    owed = desk.ensure_policy_review()
    assert (owed.owner, owed.deadline) == ("UNEWOWNER", DUE)
    assert desk.owed(Owed.POLICY_REVIEW) == owed


# -- recording the review ---------------------------------------------------------------------


def test_recording_the_policy_review_settles_it_and_owes_the_next_a_period_later(
    desk: Desk,
) -> None:
    desk.ensure_policy_review()
    desk.clock.advance(days=10)
    at = desk.clock.now()
    following = desk.record_policy_review(note="Reviewed with the CAB.")
    next_due = at + timedelta(days=365)
    assert following == Obligation(Owed.POLICY_REVIEW, POLLY.user_id, next_due, next_due)
    assert desk.owed(Owed.POLICY_REVIEW) == following
    assert policy_events(desk) == [
        (
            "policy_reviewed",
            POLLY.user_id,
            {"note": "Reviewed with the CAB.", "next_due": next_due.isoformat()},
        )
    ]
    entry = desk.uow.audit.events[-1].entry
    assert (entry.at, entry.from_stage, entry.to_stage) == (at, "", "")


def test_a_restart_after_the_review_keeps_the_next_one_a_period_later(desk: Desk) -> None:
    desk.clock.advance(days=10)
    following = desk.record_policy_review()
    assert desk.ensure_policy_review() == following


def test_a_policy_review_note_longer_than_a_comment_is_refused(desk: Desk) -> None:
    desk.ensure_policy_review()
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.record_policy_review(note="n" * 1001)
    assert refused.value.field == "note"


# -- an incident makes it due now -------------------------------------------------------------


def test_a_review_saying_a_change_contributed_to_an_incident_makes_the_policy_review_due_now(
    desk: Desk,
) -> None:
    desk.ensure_policy_review()
    change = desk.record_outcome(desk.deploying(emergency_details()), Outcome.FAILED)
    desk.clock.advance(hours=6)
    owed = {doc: "Supplied." for doc in desk.stored(change).owed_documents}
    review = replace(a_post_change_review(**owed), contributed_to_incident=True)
    desk.submit_post_change_review(change, review=review)
    now = desk.clock.now()
    policy_review = desk.owed(Owed.POLICY_REVIEW)
    assert policy_review == Obligation(Owed.POLICY_REVIEW, POLLY.user_id, now + WEEK, now)
    assert is_due(policy_review, now)
    triggered = desk.last_entry(change, "policy_review_triggered").entry
    assert (triggered.actor, triggered.details) == (ALICE.user_id, {"owner": POLLY.user_id})
    assert desk.actions(change)[-3:] == [
        "post_change_review_submitted",
        "policy_review_triggered",
        "closed",
    ]
    assert desk.ensure_policy_review() == policy_review  # a restart keeps it due now


def test_a_review_saying_no_change_contributed_leaves_the_policy_review_as_it_was(
    desk: Desk,
) -> None:
    yearly = desk.ensure_policy_review()
    change = desk.record_outcome(desk.deploying(emergency_details()), Outcome.FAILED)
    desk.submit_post_change_review(change)
    assert desk.owed(Owed.POLICY_REVIEW) == yearly
    assert "policy_review_triggered" not in desk.actions(change)


# -- snoozing it ------------------------------------------------------------------------------


def test_the_policy_owner_may_snooze_the_policy_review(desk: Desk) -> None:
    desk.ensure_policy_review()
    desk.clock.advance(seconds=(DUE - NOW).total_seconds())
    later = desk.snooze(Owed.POLICY_REVIEW, None, by=POLLY, choice="1d")
    assert later.next_at == DUE + timedelta(days=1)
    assert desk.owed(Owed.POLICY_REVIEW) == later
    assert policy_events(desk) == [
        ("reminder_snoozed", POLLY.user_id, {"until": later.next_at.isoformat()})
    ]


@pytest.mark.parametrize("who", [ALICE, ANNA, EMMA, BOB])
def test_only_the_policy_owner_may_snooze_the_policy_review(who: Actor, desk: Desk) -> None:
    desk.ensure_policy_review()
    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.snooze(Owed.POLICY_REVIEW, None, by=who)
    assert str(refused.value) == "Only the policy owner can snooze this."


def test_an_unknown_snooze_of_the_policy_review_is_refused(desk: Desk) -> None:
    desk.ensure_policy_review()
    with nothing_written(desk.uow), pytest.raises(ValidationFailed):
        desk.snooze(Owed.POLICY_REVIEW, None, by=POLLY, choice="1y")


def test_there_is_no_policy_review_to_snooze_before_one_is_owed(desk: Desk) -> None:
    with nothing_written(desk.uow), pytest.raises(NotFound):
        desk.snooze(Owed.POLICY_REVIEW, None, by=POLLY)


@pytest.mark.parametrize("who", [ANNA, ALICE], ids=["an approver", "a requester"])
def test_only_the_policy_owner_may_record_the_policy_review(who: Actor, desk: Desk) -> None:
    desk.ensure_policy_review()
    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.record_policy_review(by=who)
    assert str(refused.value) == "Only the owner of the change policy can record its review."


def test_a_policy_without_an_owner_says_so_when_its_review_is_recorded(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    policy = a_policy(policy='name = "Test"\nowner = ""\nlast_reviewed = 2026-01-05')
    with pytest.raises(NotAllowed, match=r"names no owner \(policy.owner\)"):
        followup.record_policy_review(uow, clock, policy, ALICE)


def test_an_incident_leaves_an_overdue_policy_review_overdue(desk: Desk) -> None:
    desk.ensure_policy_review()
    yearly = desk.owed(Owed.POLICY_REVIEW)
    assert yearly is not None
    desk.clock.advance(days=40)  # the yearly review is overdue by weeks
    assert desk.clock.now() > yearly.deadline + WEEK

    change = desk.record_outcome(desk.deploying(emergency_details()), Outcome.FAILED)
    owed = {doc: "Written now." for doc in desk.stored(change).owed_documents}
    review = replace(a_post_change_review(**owed), contributed_to_incident=True)
    desk.submit_post_change_review(change, review=review)

    after = desk.owed(Owed.POLICY_REVIEW)
    assert after is not None and after.deadline == yearly.deadline
    assert after.is_overdue(desk.clock.now())
