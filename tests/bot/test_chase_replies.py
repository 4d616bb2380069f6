"""The thread hears of every reminder, escalation and snooze, in words a person reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.views.replies import thread_reply
from tests.bot.changes import a_desk, emergency_details
from workflows.audit import AuditEntry
from workflows.chase import Owed

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def entry(action: str, **details: object) -> AuditEntry:
    return AuditEntry(AT, "system", action, "CHG-0001", "deploy", "deploy", dict(details))


@pytest.mark.parametrize(
    ("action", "details", "words"),
    [
        (
            "reminder_sent",
            {"kind": "post_change_review", "owner": "UALICE", "due": AT.isoformat()},
            "Reminder to <@UALICE>: the post-change review is due",
        ),
        (
            "reminder_escalated",
            {"kind": "post_change_review", "owner": "UALICE", "overdue_seconds": 7200},
            "overdue by 2h",
        ),
        (
            "reminder_escalated",
            {"kind": "retrospective_approval", "owner": "UALICE", "overdue_seconds": 60},
            "retrospective approval",
        ),
        (
            "reminder_escalated",
            {"kind": "post_change_review", "owner": "UALICE", "overdue_seconds": 0},
            "by <@UALICE> is due now and overdue from now on.",
        ),
        ("reminder_snoozed", {"kind": "post_change_review", "until": AT.isoformat()}, "snoozed"),
        ("policy_review_triggered", {"owner": "UOWNER"}, "<@UOWNER> has been told"),
        ("break_glass", {"waited_seconds": 900, "reason": "Site down"}, "BREAK-GLASS"),
        ("closed_without_review", {"reason": "Owner left <!here>"}, "&lt;!here&gt;"),
    ],
)
def test_each_chase_event_has_its_own_line(
    action: str, details: dict[str, object], words: str
) -> None:
    desk = a_desk()
    change = desk.request(emergency_details())
    reply = thread_reply(entry(action, **details), change, desk.policy)
    assert reply is not None and words in reply
    assert "ℹ️" not in reply


def test_an_escalation_calls_the_emergency_approvers() -> None:
    desk = a_desk()
    change = desk.request(emergency_details())
    details = {"kind": Owed.POST_CHANGE_REVIEW.value, "owner": "UALICE", "overdue_seconds": 5}
    reply = thread_reply(entry("reminder_escalated", **details), change, desk.policy)
    assert reply is not None and "<@UEMMA>" in reply


@pytest.mark.parametrize(
    ("action", "details"),
    [
        ("reminder_sent", {"due": AT.isoformat()}),
        ("reminder_escalated", {"overdue_seconds": 3600}),
    ],
)
def test_a_retrospective_approval_is_asked_of_the_approvers_never_of_its_requester(
    action: str, details: dict[str, object]
) -> None:
    desk = a_desk()
    change = desk.request(emergency_details())
    kind = Owed.RETROSPECTIVE_APPROVAL.value
    reply = thread_reply(entry(action, kind=kind, owner="UALICE", **details), change, desk.policy)
    assert reply is not None
    assert "<@UEMMA>" in reply and "please approve it on the card" in reply
    assert "Reminder to <@UALICE>" not in reply and "by <@UALICE>" not in reply


def test_the_first_escalation_at_the_deadline_is_not_overdue_by_nothing() -> None:
    desk = a_desk()
    change = desk.request(emergency_details())
    details = {"kind": Owed.POST_CHANGE_REVIEW.value, "owner": "UALICE", "overdue_seconds": 0}
    reply = thread_reply(entry("reminder_escalated", **details), change, desk.policy)
    assert reply is not None and "0s" not in reply


@pytest.mark.parametrize("action", ["reminder_sent", "reminder_escalated"])
@pytest.mark.parametrize("kind", [Owed.POST_CHANGE_REVIEW, Owed.RETROSPECTIVE_APPROVAL])
def test_a_reminder_slack_would_not_take_is_said_in_the_thread(action: str, kind: Owed) -> None:
    desk = a_desk()
    change = desk.request(emergency_details())
    details = {
        "kind": kind.value,
        "owner": "UALICE",
        "due": AT.isoformat(),
        "delivery": "unreachable",
        "slack_error": "user_disabled",
    }
    reply = thread_reply(entry(action, **details), change, desk.policy)
    assert reply is not None
    assert "Slack would not take the reminder to <@UALICE> (`user_disabled`)" in reply
    assert "has been reminded" not in reply


def test_a_reminder_that_reached_its_owner_says_nothing_of_slack() -> None:
    desk = a_desk()
    change = desk.request(emergency_details())
    details = {"kind": "post_change_review", "owner": "UALICE", "due": AT.isoformat()}
    for delivery in ("sent", "uncertain"):
        reply = thread_reply(
            entry("reminder_sent", delivery=delivery, slack_error="x", **details),
            change,
            desk.policy,
        )
        assert reply is not None and "would not take" not in reply and "⚠️" not in reply
