"""A reminder as its owner reads it: what is owed and by when, a button to act, and snoozes
only while the owner may still put it off."""

from __future__ import annotations

from datetime import timedelta

from bot import ids
from bot.views.reminders import escalation_text, reminder_blocks, reminder_text
from tests.bot.changes import NOW, a_desk, emergency_details
from workflows.chase import Obligation, Owed, Reminder
from workflows.model import Change, Outcome

DEADLINE = NOW + timedelta(hours=48)


def owed_review() -> Change:
    desk = a_desk()
    return desk.stored(desk.record_outcome(desk.deploying(emergency_details()), Outcome.FAILED))


def reminder(
    *, overdue_by: timedelta | None = None, kind: Owed = Owed.POST_CHANGE_REVIEW
) -> Reminder:
    obligation = Obligation(kind, "UALICE", DEADLINE, DEADLINE, 1)
    if overdue_by is None:
        return Reminder(obligation, False, DEADLINE - timedelta(hours=12), timedelta())
    return Reminder(obligation, True, DEADLINE + overdue_by, overdue_by)


def action_ids(blocks: list[dict[str, object]]) -> list[str]:
    actions = next(b for b in blocks if b["type"] == "actions")
    return [e["action_id"] for e in actions["elements"]]  # type: ignore[index]


def test_a_reminder_before_the_deadline_offers_the_review_and_the_snoozes() -> None:
    change = owed_review()

    blocks = reminder_blocks(reminder(), change)

    assert action_ids(blocks) == [
        ids.WRITE_REVIEW,
        f"{ids.SNOOZE_PREFIX}1h",
        f"{ids.SNOOZE_PREFIX}1d",
    ]
    assert reminder_text(reminder(), change).startswith("⏰ Reminder: the post-change review of")


def test_an_escalation_offers_no_snooze() -> None:
    change = owed_review()

    blocks = reminder_blocks(reminder(overdue_by=timedelta(hours=4)), change)

    assert action_ids(blocks) == [ids.WRITE_REVIEW]


def test_the_first_escalation_says_it_is_due_now_not_overdue_by_nothing() -> None:
    change = owed_review()

    first = reminder_text(reminder(overdue_by=timedelta(seconds=0.4)), change)
    later = reminder_text(reminder(overdue_by=timedelta(hours=4)), change)
    owner = escalation_text(reminder(overdue_by=timedelta()), change)

    assert first.startswith("🚨 Due now and overdue from now on: the post-change review of")
    assert later.startswith("🚨 Overdue by 4h: the post-change review of")
    assert "0s" not in first + owner
    assert owner.endswith("by <@UALICE>: due now and overdue from now on.")


def test_the_policy_reviews_reminder_may_be_snoozed_even_once_due() -> None:
    blocks = reminder_blocks(reminder(overdue_by=timedelta(days=3), kind=Owed.POLICY_REVIEW), None)

    assert action_ids(blocks) == [
        ids.POLICY_REVIEWED,
        f"{ids.SNOOZE_PREFIX}1h",
        f"{ids.SNOOZE_PREFIX}1d",
    ]
