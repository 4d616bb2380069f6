"""The chase: reminders at the policy's cadence until the deadline, escalations after it, one
reminder (never a burst) after a long pause, snoozes; and the post-change review it chases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    BOB,
    EMMA,
    IVAN,
    NOW,
    OSCAR,
    PETER,
    POLLY,
    Desk,
    a_policy,
    emergency_details,
    normal_details,
    nothing_written,
)
from tests.unit.fakes import FakeClock
from workflows.chase import Cadence, Obligation, Owed, Reminder, is_due, owe, remind, snooze
from workflows.errors import NotAllowed, NotFound, TransitionNotAllowed, ValidationFailed
from workflows.followup import review_cadence
from workflows.model import Actor, Outcome, Stage

HOUR = timedelta(hours=1)
CADENCE = Cadence(every=12 * HOUR, escalate_every=4 * HOUR)
RULES = 'approver_users = ["UEMMA"]\napprover_groups = ["SONCALL"]\n'


def opened(clock: FakeClock, deadline_in: timedelta = 48 * HOUR) -> Obligation:
    """A post-change review owed from now, due `deadline_in` later."""
    now = clock.now()
    return owe(Owed.POST_CHANGE_REVIEW, ALICE.user_id, now, now + deadline_in, CADENCE, 7)


def sweep(obligation: Obligation, clock: FakeClock) -> tuple[list[Reminder], Obligation]:
    """What one pass of the scheduler does now: remind while the obligation is due."""
    sent = []
    while is_due(obligation, clock.now()):
        reminder, obligation = remind(obligation, clock.now(), CADENCE)
        sent.append(reminder)
    return sent, obligation


def chase_until(
    obligation: Obligation, clock: FakeClock, end: timedelta
) -> tuple[list[Reminder], Obligation]:
    """A scheduler that never sleeps through a reminder, run from NOW until NOW + end."""
    sent = []
    while obligation.next_at <= NOW + end:
        clock.advance(seconds=(obligation.next_at - clock.now()).total_seconds())
        swept, obligation = sweep(obligation, clock)
        sent += swept
    return sent, obligation


# -- the deadline and the cadence ---------------------------------------------------------


def test_the_first_reminder_comes_one_cadence_after_the_obligation_opens(clock: FakeClock) -> None:
    obligation = opened(clock)
    assert obligation.next_at == NOW + 12 * HOUR
    assert (obligation.reminders, obligation.escalations, obligation.snoozed_until) == (0, 0, None)


def test_the_first_reminder_never_comes_after_the_deadline(clock: FakeClock) -> None:
    assert opened(clock, deadline_in=2 * HOUR).next_at == NOW + 2 * HOUR


def test_a_reminder_is_due_at_its_planned_time_and_not_a_second_before(clock: FakeClock) -> None:
    obligation = opened(clock)
    clock.advance(hours=12, seconds=-1)
    assert not is_due(obligation, clock.now())
    clock.advance(seconds=1)
    assert is_due(obligation, clock.now())


def test_before_the_deadline_the_owner_is_reminded_at_the_cadence(clock: FakeClock) -> None:
    sent, planned = chase_until(opened(clock), clock, 47 * HOUR)
    assert [r.sent_at for r in sent] == [NOW + 12 * HOUR, NOW + 24 * HOUR, NOW + 36 * HOUR]
    assert not any(r.escalated for r in sent)
    assert {r.overdue_by for r in sent} == {timedelta()}
    assert planned.next_at == NOW + 48 * HOUR


def test_a_reminder_before_the_deadline_is_planned_no_later_than_the_deadline(
    clock: FakeClock,
) -> None:
    sent, planned = chase_until(opened(clock, deadline_in=30 * HOUR), clock, 29 * HOUR)
    assert [r.sent_at for r in sent] == [NOW + 12 * HOUR, NOW + 24 * HOUR]
    assert planned.next_at == NOW + 30 * HOUR


def test_the_reminder_at_the_deadline_escalates(clock: FakeClock) -> None:
    sent, _ = chase_until(opened(clock), clock, 48 * HOUR)
    last = sent[-1]
    assert (last.sent_at, last.escalated, last.overdue_by) == (NOW + 48 * HOUR, True, timedelta())
    assert last.obligation.is_overdue(last.sent_at)


def test_after_the_deadline_every_reminder_escalates_at_the_escalation_cadence(
    clock: FakeClock,
) -> None:
    sent, planned = chase_until(opened(clock), clock, 60 * HOUR)
    after = [(r.sent_at - NOW, r.escalated, r.overdue_by) for r in sent if r.escalated]
    assert after == [
        (48 * HOUR, True, 0 * HOUR),
        (52 * HOUR, True, 4 * HOUR),
        (56 * HOUR, True, 8 * HOUR),
        (60 * HOUR, True, 12 * HOUR),
    ]
    assert planned.next_at == NOW + 64 * HOUR


def test_the_obligation_counts_its_reminders_and_escalations(clock: FakeClock) -> None:
    sent, planned = chase_until(opened(clock), clock, 60 * HOUR)
    assert (planned.reminders, planned.escalations) == (7, 4) == (len(sent), 4)
    assert [r.obligation.reminders for r in sent] == list(range(7))


# -- a restart or a long pause ------------------------------------------------------------


def test_a_reminder_due_long_ago_is_sent_once_and_the_next_is_planned_from_now(
    clock: FakeClock,
) -> None:
    obligation = opened(clock)
    clock.advance(days=5)  # nobody was running across the deadline and thirty escalations
    sent, planned = sweep(obligation, clock)
    assert len(sent) == 1
    assert (sent[0].escalated, sent[0].overdue_by) == (True, timedelta(days=3))
    assert planned.next_at == clock.now() + 4 * HOUR
    assert (planned.reminders, planned.escalations) == (1, 1)


def test_a_pause_before_the_deadline_sends_one_reminder_and_resumes_the_cadence_from_now(
    clock: FakeClock,
) -> None:
    obligation = opened(clock)
    clock.advance(hours=35)  # the reminders at 12h and 24h were missed
    sent, planned = sweep(obligation, clock)
    assert [(r.sent_at, r.escalated) for r in sent] == [(NOW + 35 * HOUR, False)]
    assert planned.next_at == NOW + 47 * HOUR


def test_a_pause_ending_near_the_deadline_plans_the_next_reminder_at_the_deadline(
    clock: FakeClock,
) -> None:
    obligation = opened(clock)
    clock.advance(hours=40)
    _, planned = sweep(obligation, clock)
    assert planned.next_at == NOW + 48 * HOUR


# -- snoozes ------------------------------------------------------------------------------


def test_snoozing_an_hour_puts_the_next_reminder_an_hour_from_now(clock: FakeClock) -> None:
    obligation = opened(clock)
    clock.advance(hours=11, minutes=30)
    later = snooze(obligation, clock.now(), "1h")
    assert later.next_at == later.snoozed_until == NOW + 12.5 * HOUR
    assert (later.reminders, later.escalations, later.deadline) == (0, 0, obligation.deadline)


def test_snoozing_a_day_puts_the_next_reminder_a_day_from_now(clock: FakeClock) -> None:
    obligation = opened(clock, deadline_in=72 * HOUR)
    clock.advance(hours=12)
    later = snooze(obligation, clock.now(), "1d")
    assert later.next_at == later.snoozed_until == NOW + 36 * HOUR


def test_a_snooze_never_puts_a_reminder_past_the_deadline(clock: FakeClock) -> None:
    obligation = opened(clock)
    clock.advance(hours=40)
    later = snooze(obligation, clock.now(), "1d")
    # The escalations begin at the deadline, whatever the owner snoozed.
    assert later.next_at == later.snoozed_until == obligation.deadline


def test_an_overdue_obligation_cannot_be_snoozed(clock: FakeClock) -> None:
    _, escalating = chase_until(opened(clock), clock, 48 * HOUR)
    with pytest.raises(NotAllowed) as refused:
        snooze(escalating, clock.now(), "1d")
    assert str(refused.value) == (
        "The post-change review is overdue: it is escalated until it is in, and escalations "
        "cannot be snoozed."
    )


def test_the_next_reminder_is_planned_from_when_this_one_was_due_not_when_it_was_sent(
    clock: FakeClock,
) -> None:
    obligation = opened(clock)
    clock.advance(hours=12, seconds=1)  # the sweep comes a second after it was due
    _, planned = sweep(obligation, clock)
    assert planned.next_at == NOW + 24 * HOUR
    clock.advance(hours=36, seconds=-1)  # and at the deadline, a second late again
    _, escalating = sweep(planned, clock)
    clock.current = NOW + 48 * HOUR + timedelta(seconds=1)
    _, escalated = sweep(escalating, clock)
    assert escalated.next_at == NOW + 52 * HOUR


def test_a_snooze_never_brings_the_next_reminder_forward(clock: FakeClock) -> None:
    obligation = opened(clock)
    clock.advance(hours=1)
    later = snooze(obligation, clock.now(), "1h")
    # The reminder planned at 12h stays there, and the snooze says so.
    assert later.next_at == later.snoozed_until == NOW + 12 * HOUR


@pytest.mark.parametrize("choice", ["", "2h", "1w", "forever", "1H"])
def test_an_unknown_snooze_is_refused(choice: str, clock: FakeClock) -> None:
    with pytest.raises(ValidationFailed) as refused:
        snooze(opened(clock), clock.now(), choice)
    assert (refused.value.field, refused.value.reason) == ("snooze", "choose one of 1h, 1d.")


def test_a_snooze_that_reaches_the_deadline_ends_in_an_escalation_there(
    clock: FakeClock,
) -> None:
    _, obligation = chase_until(opened(clock), clock, 36 * HOUR)
    clock.advance(hours=11)
    obligation = snooze(obligation, clock.now(), "1d")  # at 47h: a day would pass 48h
    sent, planned = chase_until(obligation, clock, 56 * HOUR)
    assert [(r.sent_at - NOW, r.escalated) for r in sent] == [
        (48 * HOUR, True),
        (52 * HOUR, True),
        (56 * HOUR, True),
    ]
    assert planned.snoozed_until is None
    assert (planned.reminders, planned.escalations) == (6, 3)


# -- the post-change review is owed, chased and settled -----------------------------------


def test_an_emergency_outcome_opens_a_post_change_review_owed_by_the_requester(
    desk: Desk,
) -> None:
    change = desk.deploying(emergency_details())
    desk.clock.advance(hours=5)
    desk.record_outcome(change)
    assert desk.owed(Owed.POST_CHANGE_REVIEW, change) == Obligation(
        Owed.POST_CHANGE_REVIEW,
        ALICE.user_id,
        deadline=NOW + 53 * HOUR,
        next_at=NOW + 17 * HOUR,
        number=change.number,
    )


def test_the_implementer_owes_the_post_change_review_when_there_is_one(desk: Desk) -> None:
    change = desk.deploying(emergency_details(implementer=IVAN.user_id))
    desk.record_outcome(change, by=IVAN)
    owed = desk.owed(Owed.POST_CHANGE_REVIEW, change)
    assert owed is not None and owed.owner == IVAN.user_id


def test_the_review_deadline_and_cadence_are_the_policys(desk: Desk) -> None:
    timing = 'review_deadline = "6h"\nreminder_every = "2h"\nescalation_every = "30m"'
    desk.policy = a_policy(emergency=RULES + timing)
    assert review_cadence(desk.policy) == Cadence(2 * HOUR, timedelta(minutes=30))
    change = desk.record_outcome(desk.deploying(emergency_details()))
    owed = desk.owed(Owed.POST_CHANGE_REVIEW, change)
    assert owed is not None
    assert (owed.next_at, owed.deadline) == (NOW + 2 * HOUR, NOW + 6 * HOUR)


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.ROLLED_BACK])
def test_a_normal_change_that_failed_or_was_rolled_back_owes_a_review(
    outcome: Outcome, desk: Desk
) -> None:
    change = desk.record_outcome(desk.deploying(), outcome)
    assert (change.stage, change.review_owed, change.owed_documents) == (Stage.DEPLOY, True, ())
    owed = desk.owed(Owed.POST_CHANGE_REVIEW, change)
    assert owed is not None
    assert (owed.owner, owed.deadline) == (ALICE.user_id, NOW + 48 * HOUR)


@pytest.mark.parametrize("outcome", [Outcome.SUCCESSFUL, Outcome.SUCCESSFUL_WITH_ISSUES])
def test_a_normal_change_that_went_well_owes_nothing_and_closes(
    outcome: Outcome, desk: Desk
) -> None:
    change = desk.record_outcome(desk.deploying(), outcome, notes="Slow to warm up.")
    assert (change.stage, change.review_owed) == (Stage.CLOSED, False)
    assert desk.uow.obligations.committed == {}


def test_the_post_change_review_settles_what_is_owed(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    desk.clock.advance(hours=60)  # late: the chase was escalating
    assert desk.submit_post_change_review(change).stage is Stage.CLOSED
    assert desk.owed(Owed.POST_CHANGE_REVIEW, change) is None


def test_an_approver_may_close_a_change_without_its_review_giving_a_reason(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    desk.clock.advance(days=10)
    closed = desk.close_without_review(change, by=EMMA, reason="The owner left the company.")
    assert (closed.stage, closed.review_owed) == (Stage.CLOSED, False)
    assert closed.closed_without_review == "The owner left the company."
    assert closed.closed_at == NOW + timedelta(days=10)
    assert desk.owed(Owed.POST_CHANGE_REVIEW, change) is None
    entry = desk.last_entry(change, "closed_without_review").entry
    assert (entry.actor, entry.from_stage, entry.to_stage) == (EMMA.user_id, "deploy", "closed")
    assert entry.details == {"reason": "The owner left the company."}


def test_a_normal_approver_closes_a_failed_normal_change_without_its_review(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(normal_details()), Outcome.ROLLED_BACK)
    assert desk.close_without_review(change, by=ANNA).stage is Stage.CLOSED
    assert desk.uow.obligations.committed == {}


@pytest.mark.parametrize("who", [ALICE, IVAN, PETER, BOB, ANNA, POLLY])
def test_only_an_approver_who_did_not_request_it_may_close_without_the_review(
    who: Actor, desk: Desk
) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details(implementer=IVAN.user_id)))
    with nothing_written(desk.uow), pytest.raises(NotAllowed):
        desk.close_without_review(change, by=who)


def test_an_emergency_approver_cannot_close_their_own_change_without_its_review(
    desk: Desk,
) -> None:
    change = desk.request(emergency_details(), by=EMMA)
    change = desk.start_deployment(desk.approve(change, by=OSCAR), by=EMMA)
    change = desk.record_outcome(change, by=EMMA)
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="You requested"):
        desk.close_without_review(change, by=EMMA)


def test_closing_without_the_review_needs_a_reason(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.close_without_review(change, by=EMMA, reason="  ")
    assert refused.value.field == "reason"


def test_a_change_owing_no_review_cannot_be_closed_without_one(desk: Desk) -> None:
    change = desk.deploying(emergency_details())
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed):
        desk.close_without_review(change, by=EMMA)


# -- snoozing from a reminder -------------------------------------------------------------


def test_the_owner_snoozes_a_review_reminder_and_the_snooze_is_recorded(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    desk.clock.advance(hours=11, minutes=30)
    later = desk.snooze(Owed.POST_CHANGE_REVIEW, change, choice="1d")
    assert later.next_at == NOW + 35.5 * HOUR
    assert desk.owed(Owed.POST_CHANGE_REVIEW, change) == later
    entry = desk.last_entry(change, "reminder_snoozed").entry
    assert (entry.actor, entry.from_stage, entry.to_stage) == (ALICE.user_id, "deploy", "deploy")
    assert entry.details == {"kind": "post_change_review", "until": later.next_at.isoformat()}
    assert desk.stored(change).stage is Stage.DEPLOY


def test_the_owner_and_the_requester_may_both_snooze(desk: Desk) -> None:
    change = desk.deploying(emergency_details(implementer=IVAN.user_id))
    change = desk.record_outcome(change, by=IVAN)
    desk.snooze(Owed.POST_CHANGE_REVIEW, change, by=IVAN)
    desk.snooze(Owed.POST_CHANGE_REVIEW, change, by=ALICE, choice="1d")
    assert desk.actions(change)[-2:] == ["reminder_snoozed", "reminder_snoozed"]


@pytest.mark.parametrize("who", [EMMA, BOB, POLLY])
def test_nobody_else_may_snooze_a_review_reminder(who: Actor, desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.snooze(Owed.POST_CHANGE_REVIEW, change, by=who)
    assert str(refused.value) == f"Only {change.ref}'s owner can snooze its reminders."


def test_an_unknown_snooze_from_a_reminder_writes_nothing(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    with nothing_written(desk.uow), pytest.raises(ValidationFailed):
        desk.snooze(Owed.POST_CHANGE_REVIEW, change, choice="1w")


def test_there_is_nothing_to_snooze_once_the_review_is_in(desk: Desk) -> None:
    change = desk.submit_post_change_review(
        desk.record_outcome(desk.deploying(emergency_details()))
    )
    with nothing_written(desk.uow), pytest.raises(NotFound):
        desk.snooze(Owed.POST_CHANGE_REVIEW, change)


def test_a_snoozed_review_reminder_still_escalates_at_the_deadline(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    desk.clock.advance(hours=47)
    snoozed = desk.snooze(Owed.POST_CHANGE_REVIEW, change, choice="1d")
    desk.clock.advance(hours=1)
    assert is_due(snoozed, desk.clock.now())
    reminder, planned = remind(snoozed, desk.clock.now(), review_cadence(desk.policy))
    assert (reminder.escalated, reminder.overdue_by) == (True, 0 * HOUR)
    assert planned.next_at == desk.clock.now() + desk.policy.emergency.escalation_every


def test_an_overdue_review_cannot_be_snoozed_by_its_owner(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    desk.clock.advance(hours=49)
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="cannot be snoozed"):
        desk.snooze(Owed.POST_CHANGE_REVIEW, change, choice="1d")
