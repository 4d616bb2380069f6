"""The thread's running commentary and the requester's direct messages, one line per audit
entry, for every entry the process writes."""

from __future__ import annotations

import pytest

from bot import text
from bot.effects import effects_for
from bot.views.replies import approvers_mention, requester_notice, thread_reply
from tests.bot.blockkit import HOSTILE, HOSTILE_ESCAPED, UNICODE, assert_safe_mrkdwn
from tests.bot.changes import (
    ALICE,
    ANNA,
    ARTHUR,
    EMMA,
    NOW,
    a_desk,
    a_policy,
    emergency_details,
    entries,
    every_change,
    normal_details,
    standard_details,
)
from workflows.audit import AuditEntry
from workflows.events import Happened
from workflows.model import Classification, Level, Outcome, Stage
from workflows.stages import Action

#: Events about no change, or told where they happened (a freeze refusal, on the form), so
#: never said in a change's thread. (A catalog proposal's thread says its own: bot/views/proposals.)
NOT_IN_A_THREAD = {
    Happened.PROPOSED,
    Happened.POLICY_REVIEWED,
    Happened.TOKEN_CREATED,
    Happened.TOKEN_REVOKED,
    Happened.FREEZE_REFUSED,
}


def last(desk: object, action: str) -> AuditEntry:
    return [e for e in entries(desk) if e.action == action][-1]  # type: ignore[arg-type]


@pytest.mark.parametrize("action", sorted(set(Happened) - NOT_IN_A_THREAD))
def test_every_event_about_a_change_has_its_own_line(action: Happened) -> None:
    assert text.has_macro("replies.j2", action)


def test_every_move_has_an_event() -> None:
    assert all(isinstance(a.past, Happened) for a in Action)


def test_every_entry_of_every_scenario_gets_a_safe_line() -> None:
    seen = set()
    for _, desk, change in every_change():
        for entry in entries(desk):
            reply = thread_reply(entry, change, desk.policy)
            assert reply, entry
            assert_safe_mrkdwn(reply)
            assert "ℹ️" not in reply, f"{entry.action} fell back to the generic line"
            seen.add(entry.action)
    # The scenarios make every event a change can have but the chase's (test_chase_replies).
    chase = {
        Happened.REMINDER_SENT,
        Happened.REMINDER_ESCALATED,
        Happened.REMINDER_SNOOZED,
        Happened.POLICY_REVIEW_TRIGGERED,
    }
    assert seen >= set(Happened) - NOT_IN_A_THREAD - chase


def test_an_approval_is_counted_against_what_is_needed() -> None:
    desk = a_desk()
    change = desk.approve(
        desk.normal_change_in(Stage.APPROVE, normal_details(risk=Level.HIGH)), by=ANNA
    )
    reply = thread_reply(last(desk, "approved"), desk.stored(change), desk.policy)
    assert reply == "✅ <@UANNA> approved (1 of 2 needed)."
    change = desk.approve(change, by=ARTHUR)
    assert thread_reply(last(desk, "approved"), desk.stored(change), desk.policy) == (
        "✅ <@UARTHUR> approved (2 of 2 needed)."
    )
    assert thread_reply(last(desk, "authorised"), desk.stored(change), desk.policy) == (
        "🟢 Authorised with the approval of <@UANNA>, <@UARTHUR>: deployment may start."
    )


def test_an_emergency_approval_says_what_it_stands_for() -> None:
    desk = a_desk()
    change = desk.approve(desk.request(emergency_details()), by=EMMA)
    reply = thread_reply(last(desk, "approved"), desk.stored(change), desk.policy)
    assert reply == (
        "✅ <@UEMMA> approved (1 of 1 needed), which stands for the compressed review and test."
    )


def test_the_process_itself_is_called_changebot() -> None:
    desk = a_desk()
    change = desk.record_outcome(desk.deploying())
    closed = last(desk, "closed")
    assert thread_reply(closed, change, desk.policy) == "🔒 Closed by <@UALICE>."
    system = AuditEntry(
        NOW,
        "system",
        "approvals_withdrawn",
        change.ref,
        "deploy",
        "approve",
        {"withdrawn": ["UANNA"], "because": ["title"]},
    )
    assert thread_reply(system, change, desk.policy).startswith("⚠️ The approvals of <@UANNA>")  # type: ignore[union-attr]
    unknown = AuditEntry(NOW, "system", "policy_rechecked", change.ref, "deploy", "deploy")
    assert thread_reply(unknown, change, desk.policy) == "ℹ️ changebot: policy rechecked."


def test_a_standard_change_cites_its_procedure_for_each_step_it_satisfies() -> None:
    desk = a_desk()
    change = desk.request(standard_details())
    replies = [
        thread_reply(e, change, desk.policy)
        for e in entries(desk)
        if e.action == "satisfied_by_procedure"
    ]
    assert replies == [
        "📘 The pre-approved procedure Rolling restart of a stateless service (v3) "
        f"(<https://example.com/runbooks/restart|runbook>) satisfies the {step}."
        for step in ("review", "testing", "approval")
    ]


def test_a_rejection_quotes_its_reason_literally() -> None:
    desk = a_desk()
    change = desk.reject(desk.request(), reason=f"{HOSTILE} {UNICODE}")
    reply = thread_reply(last(desk, "rejected"), desk.stored(change), desk.policy)
    assert reply is not None
    assert_safe_mrkdwn(reply)
    assert f"“{HOSTILE_ESCAPED} {UNICODE}”" in reply
    assert reply.startswith("↩️ <@UANNA> rejected it in Review")


def test_user_text_in_every_reply_is_escaped() -> None:
    desk = a_desk()
    hostile = f"{HOSTILE} {UNICODE}"
    change = desk.request(normal_details(title=hostile[:150]))
    change = desk.review(change, assessment=hostile)
    change = desk.add_evidence(change, evidence=hostile)
    change = desk.approve(change, comment=hostile[:1000])
    change = desk.start_deployment(change)
    change = desk.record_outcome(change, Outcome.FAILED, notes=hostile)
    change = desk.cancel(desk.request(), reason=hostile)
    for entry in entries(desk):
        reply = thread_reply(entry, desk.stored(change), desk.policy)
        assert reply is not None
        assert_safe_mrkdwn(reply)
        notice = requester_notice(entry, desk.stored(change))
        if notice:
            assert_safe_mrkdwn(notice)


def test_a_long_reason_is_cut_with_the_marker() -> None:
    desk = a_desk()
    change = desk.cancel(desk.request(), reason="x" * 1000)
    reply = thread_reply(last(desk, "cancelled"), desk.stored(change), desk.policy)
    assert reply is not None and text.CUT_MARKER in reply and len(reply) < 600


def test_an_edit_names_the_fields_and_the_approvals_it_withdrew() -> None:
    desk = a_desk()
    change = desk.edit(desk.normal_change_in(Stage.DEPLOY), title="Raise it to 60")
    stored = desk.stored(change)
    assert thread_reply(last(desk, "edited"), stored, desk.policy) == (
        "✏️ <@UALICE> edited the title."
    )
    assert thread_reply(last(desk, "approvals_withdrawn"), stored, desk.policy) == (
        "⚠️ The approvals of <@UANNA> were withdrawn because the title changed: "
        "it needs approving again."
    )
    assert thread_reply(last(desk, "returned_to_approve"), stored, desk.policy) == (
        "↩️ Back in Approve after the title changed: deployment waits for its approvals again."
    )


def test_an_edit_without_its_fields_still_reads() -> None:
    desk = a_desk()
    change = desk.request()
    entry = AuditEntry(NOW, "UALICE", "edited", change.ref, "review", "review", {"fields": []})
    assert thread_reply(entry, change, desk.policy) == "✏️ <@UALICE> edited the request."


def test_stored_entries_missing_their_details_still_read() -> None:
    desk = a_desk()
    change = desk.request()
    for action in set(Happened) - NOT_IN_A_THREAD:
        entry = AuditEntry(NOW, "UBOB", action, change.ref, "nowhere", "review", {})
        assert thread_reply(entry, change, desk.policy)


def test_the_requester_hears_about_decisions_by_others() -> None:
    desk = a_desk()
    change = desk.reject(desk.request(), reason="Needs a canary.")
    notice = requester_notice(last(desk, "rejected"), desk.stored(change))
    assert notice == (
        f"↩️ <@UANNA> rejected your change *{change.ref}* · Raise the API connection pool to 50: "
        "“Needs a canary.” It is back in Request: edit it, then resubmit it."
    )
    change = desk.normal_change_in(Stage.DEPLOY)
    assert requester_notice(last(desk, "approved"), desk.stored(change)) == (
        f"✅ <@UANNA> approved your change *{change.ref}* · Raise the API connection pool to 50."
    )
    authorised = requester_notice(last(desk, "authorised"), desk.stored(change))
    assert (
        authorised is not None and "deployment may start in its window, from <!date^" in authorised
    )
    assert requester_notice(last(desk, "reviewed"), desk.stored(change)) is None


def test_the_requester_is_not_told_about_their_own_moves() -> None:
    desk = a_desk()
    change = desk.edit(desk.normal_change_in(Stage.DEPLOY), by=ALICE, title="New title")
    assert requester_notice(last(desk, "approvals_withdrawn"), desk.stored(change)) is None
    assert requester_notice(last(desk, "submitted"), desk.stored(change)) is None


def test_approvers_are_mentioned_by_group_then_by_name() -> None:
    policy = a_policy()
    assert approvers_mention(policy, Classification.NORMAL) == (
        "<!subteam^SCAB> <@UANNA> <@UARTHUR>"
    )
    assert approvers_mention(policy, Classification.EMERGENCY) == "<!subteam^SONCALL> <@UEMMA>"
    assert approvers_mention(policy, Classification.STANDARD) == ""
    fallback = a_policy(own_emergency_approvers=False)
    assert approvers_mention(fallback, Classification.EMERGENCY) == (
        "<!subteam^SCAB> <@UANNA> <@UARTHUR>"
    )


def test_a_freeze_refusal_is_recorded_but_not_said_in_the_thread() -> None:
    desk = a_desk()
    change = desk.request()
    entry = AuditEntry(
        at=desk.clock.now(),
        actor="UALICE",
        action=Happened.FREEZE_REFUSED,
        ref=change.ref,
        from_stage="",
        to_stage="",
        details={"freezes": ["Year end"]},
    )
    assert effects_for(entry, desk.stored(change), desk.policy) == []
