"""A change's card: valid Block Kit, the buttons the stage machine allows and no others,
and whatever people wrote shown literally."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from bot import ids
from bot.text import CUT_MARKER
from bot.views.card import card, progress
from bot.views.common import section
from tests.bot.blockkit import (
    HOSTILE,
    HOSTILE_ESCAPED,
    UNICODE,
    all_mrkdwn,
    assert_safe_mrkdwn,
    parse_message,
    texts,
)
from tests.bot.changes import (
    ALICE,
    ANNA,
    EMMA,
    IVAN,
    SCENARIOS,
    Desk,
    a_desk,
    a_policy,
    emergency_details,
    every_change,
    normal_details,
)
from tests.unit.builders import TOMORROW
from workflows import emergency, process
from workflows.model import (
    Change,
    Classification,
    Level,
    Links,
    Outcome,
    Rollback,
    Stage,
    seen_digest,
)
from workflows.stages import Action, available_actions
from workflows.standing import standing

CHANGES = list(every_change())


def buttons(message: dict[str, object]) -> list[dict[str, object]]:
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize(("name", "desk", "change"), CHANGES, ids=[n for n, _, _ in CHANGES])
def test_every_card_is_valid_block_kit(name: str, desk: object, change: Change) -> None:
    parse_message(card(change, desk.policy))  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "desk", "change"), CHANGES, ids=[n for n, _, _ in CHANGES])
def test_the_buttons_are_the_moves_available_now(name: str, desk: object, change: Change) -> None:
    policy = desk.policy  # type: ignore[attr-defined]
    shown = buttons(card(change, policy))
    expected = [ids.card_action_id(a) for a in available_actions(change, policy)]
    assert [b["action_id"] for b in shown] == expected
    for button in shown:
        target = ids.Target.decode(str(button["value"]))
        assert target == ids.target_of(change)


def test_the_scenarios_visit_every_stage() -> None:
    assert {c.stage for _, _, c in CHANGES} == set(Stage)
    assert len(SCENARIOS) == len(CHANGES)


@pytest.mark.parametrize(
    ("name", "desk", "change"),
    [c for c in CHANGES if c[2].stage.is_final],
    ids=[n for n, _, c in CHANGES if c.stage.is_final],
)
def test_a_closed_or_cancelled_card_has_no_actions_block(
    name: str, desk: object, change: Change
) -> None:
    blocks = card(change, desk.policy)["blocks"]  # type: ignore[attr-defined]
    assert all(b["type"] != "actions" for b in blocks)


def test_buttons_are_labelled_and_styled_for_what_they_do() -> None:
    desk = a_desk()
    change = desk.normal_change_in(Stage.APPROVE)
    by_action = {b["action_id"]: b for b in buttons(card(change, desk.policy))}
    approve = by_action[ids.card_action_id(Action.APPROVE)]
    reject = by_action[ids.card_action_id(Action.REJECT)]
    cancel = by_action[ids.card_action_id(Action.CANCEL)]
    assert (approve["text"]["text"], approve["style"]) == ("Approve", "primary")
    assert (reject["text"]["text"], reject["style"]) == ("Reject", "danger")
    assert cancel["text"]["text"] == "Cancel change"
    assert cancel["confirm"]["style"] == "danger"


def test_starting_a_deployment_asks_for_confirmation() -> None:
    desk = a_desk()
    change = desk.normal_change_in(Stage.DEPLOY)
    (start,) = [
        b
        for b in buttons(card(change, desk.policy))
        if b["action_id"] == ids.card_action_id(Action.START_DEPLOYMENT)
    ]
    assert start["text"]["text"] == "Start deployment"
    assert change.ref in start["confirm"]["title"]["text"]


def test_a_rejected_change_offers_to_resubmit() -> None:
    desk = a_desk()
    change = desk.reject(desk.request())
    labels = [b["text"]["text"] for b in buttons(card(change, desk.policy))]
    assert labels[0] == "Resubmit"


def test_the_header_names_the_change() -> None:
    desk = a_desk()
    change = desk.request(normal_details(title="Upgrade Postgres"))
    header = card(change, desk.policy)["blocks"][0]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": f"{change.ref} · Upgrade Postgres"},
    }


def test_the_progress_line_shows_done_current_and_pending_stages() -> None:
    desk = a_desk()
    change = desk.normal_change_in(Stage.TEST)

    def progress_of(change: Change) -> str:
        return progress(standing(change, desk.policy))

    assert progress_of(change) == (
        "✅ Request → ✅ Review → ▶️ Test → ▫️ Approve → ▫️ Deploy and verify"
    )
    closed = desk.stored(desk.record_outcome(desk.deploying()))
    assert progress_of(closed).endswith("✅ Deploy and verify → 🏁 Closed")
    cancelled = desk.stored(desk.cancel(desk.request()))
    assert progress_of(cancelled).endswith("▫️ Deploy and verify → ⛔ Cancelled")
    assert progress_of(card_change_in_approve_cancelled()).startswith(
        "✅ Request → ✅ Review → ✅ Test"
    )


def card_change_in_approve_cancelled() -> Change:
    desk = a_desk()
    return desk.stored(desk.cancel(desk.normal_change_in(Stage.APPROVE)))


def test_people_are_mentioned_and_the_window_is_in_each_readers_time_zone() -> None:
    desk = a_desk()
    change = desk.request(normal_details(implementer=IVAN.user_id))
    mrkdwn = all_mrkdwn(card(change, desk.policy)["blocks"])
    assert "*Requester*\n<@UALICE>" in mrkdwn
    assert "*Implementer*\n<@UIVAN>" in mrkdwn
    start = int(change.details.window.start.timestamp())  # type: ignore[union-attr]
    assert f"<!date^{start}^{{date_short_pretty}} {{time}}|" in mrkdwn


def test_approvals_are_counted_against_what_the_risk_needs_with_names() -> None:
    desk = a_desk()
    change = desk.normal_change_in(Stage.APPROVE, normal_details(risk=Level.HIGH))
    change = desk.approve(change, by=ANNA)
    assert "*Approvals:* 1 of 2 — <@UANNA>" in all_mrkdwn(card(change, desk.policy)["blocks"])


def test_a_standard_change_cites_its_procedure_and_runbook() -> None:
    _, desk, change = next(c for c in CHANGES if c[0] == "standard authorised")
    mrkdwn = all_mrkdwn(card(change, desk.policy)["blocks"])
    assert (
        "*Pre-approved:* Rolling restart of a stateless service (v3) · "
        "<https://example.com/runbooks/restart|runbook>"
    ) in mrkdwn


def test_an_emergency_card_says_what_documentation_will_be_owed_and_when() -> None:
    _, desk, emergency = next(c for c in CHANGES if c[0] == "emergency authorised")
    mrkdwn = all_mrkdwn(card(emergency, desk.policy)["blocks"])
    assert "To be supplied in the post-change review: description, rollback plan" in mrkdwn
    assert "<@UEMMA>" in mrkdwn
    _, desk, owed = next(c for c in CHANGES if c[0] == "emergency review owed")
    mrkdwn = all_mrkdwn(card(owed, desk.policy)["blocks"])
    assert "*Post-change review owed*, due <!date^" in mrkdwn
    assert "*Outcome:* Failed" in mrkdwn


def test_the_card_names_whoever_broke_glass() -> None:
    """The implementer, here: not the requester."""
    desk = a_desk()
    change = desk.request(emergency_details(implementer=IVAN.user_id))
    desk.clock.advance(hours=1)
    broken = desk._run(emergency.break_glass, change, IVAN, reason="Checkout is down.")

    mrkdwn = all_mrkdwn(card(desk.stored(broken), desk.policy)["blocks"])

    assert "by <@UIVAN>: deployed without approval" in mrkdwn


def _broken_glass(desk: Desk) -> Change:
    change = desk.request(emergency_details())
    desk.clock.advance(hours=1)
    return desk._run(emergency.break_glass, change, ALICE, reason="Checkout is down.")


def _closed_unapproved(desk: Desk) -> Change:
    failed = desk.record_outcome(desk.start_deployment(_broken_glass(desk)), Outcome.FAILED)
    return desk._run(process.close_without_review, failed, EMMA, reason="The owner left.")


def _reclassified(desk: Desk) -> Change:
    return desk.edit(
        _broken_glass(desk),
        classification=Classification.NORMAL,
        description="It was a Normal change after all.",
        services=("api",),
        rollback=Rollback(plan="Revert."),
        window=TOMORROW,
    )


BREAK_GLASS_ENDS: dict[str, tuple[Callable[[Desk], Change], str]] = {
    "still owed": (_broken_glass, "deployed without approval. *Retrospective approval owed.*"),
    "approved": (
        lambda d: d.approve(_broken_glass(d), by=EMMA),
        "deployed without approval. Approved in retrospect by <@UEMMA>.",
    ),
    "cancelled": (
        lambda d: d.cancel(_broken_glass(d), reason="It resolved itself."),
        "went ahead without approval, then was cancelled before it deployed: no approval is "
        "owed in retrospect.",
    ),
    "reclassified": (
        _reclassified,
        "went ahead without approval, then was reclassified before it deployed: its new class "
        "asks for its approvals, not one in retrospect.",
    ),
    "reclassified, then approved as a Normal change": (
        lambda d: d.approve(d.add_evidence(d.review(d.submit(_reclassified(d))))),
        "went ahead without approval, then was reclassified before it deployed: its new class "
        "asks for its approvals, not one in retrospect.",
    ),
    "closed without review": (
        _closed_unapproved,
        "deployed without approval. Closed without its post-change review, never approved in "
        "retrospect.",
    ),
}


@pytest.mark.parametrize("ended", BREAK_GLASS_ENDS)
def test_the_break_glass_line_says_what_became_of_the_approval_owed(ended: str) -> None:
    """The card says it was approved in retrospect only when an approver gave that approval."""
    make, said = BREAK_GLASS_ENDS[ended]
    desk = a_desk()
    change = desk.stored(make(desk))

    line = next(
        t for t in all_mrkdwn(card(change, desk.policy)["blocks"]).split("\n") if "BREAK-GLASS" in t
    )

    assert line.endswith(f"by <@UALICE>: {said}"), line
    assert ("Approved in retrospect" in line) is (ended == "approved")


def test_outcome_cancel_reason_and_latest_rejection_are_shown() -> None:
    desk = a_desk()
    rejected = desk.reject(
        desk.submit(desk.reject(desk.request(), reason="First")), reason="Second"
    )
    mrkdwn = all_mrkdwn(card(desk.stored(rejected), desk.policy)["blocks"])
    assert "*Rejected* 2 times; latest by <@UANNA> in Review: Second" in mrkdwn
    cancelled = desk.cancel(desk.request(), reason="Superseded by CHG-0009")
    assert "*Cancelled:* Superseded by CHG-0009" in all_mrkdwn(
        card(desk.stored(cancelled), desk.policy)["blocks"]
    )
    closed = desk.record_outcome(desk.deploying(), Outcome.SUCCESSFUL_WITH_ISSUES, notes="Slow")
    assert "*Outcome:* Successful with issues — Slow" in all_mrkdwn(
        card(desk.stored(closed), desk.policy)["blocks"]
    )


def test_only_web_addresses_become_links() -> None:
    desk = a_desk()
    change = desk.request(normal_details())
    change.details = change.details.with_changes(
        links=Links(pull_request="https://example.com/pr/1", ticket="JIRA-7 <https://evil|x>")
    )
    mrkdwn = all_mrkdwn(card(change, desk.policy)["blocks"])
    assert "<https://example.com/pr/1|Pull request>" in mrkdwn
    assert "Ticket: JIRA-7 &lt;https://evil|x&gt;" in mrkdwn


def test_what_people_wrote_is_shown_literally_and_pings_nobody() -> None:
    desk = a_desk()
    hostile = f"{HOSTILE} {UNICODE}"
    change = desk.request(
        normal_details(
            title=hostile[:150],
            description=hostile,
            services=(HOSTILE[:80], UNICODE),
            rollback=Rollback(plan=hostile),
        )
    )
    change = desk.review(change, assessment=hostile)
    change = desk.add_evidence(change, evidence=hostile)
    change = desk.reject(change, reason=hostile)
    message = card(desk.stored(change), desk.policy)
    mrkdwn = all_mrkdwn(message["blocks"])
    assert_safe_mrkdwn(mrkdwn)
    assert_safe_mrkdwn(message["text"])
    assert HOSTILE_ESCAPED in mrkdwn
    assert UNICODE in mrkdwn
    # Plain text is never parsed by Slack: the header shows the title as written.
    assert texts(message["blocks"][0], "plain_text")[0].startswith(f"{change.ref} · <!channel>")


def test_very_long_text_is_cut_with_the_marker_and_stays_within_limits() -> None:
    desk = a_desk()
    change = desk.request(
        normal_details(description="&" * 3000, rollback=Rollback(plan="x" * 3000))
    )
    message = card(change, desk.policy)
    parse_message(message)
    description = next(
        t for t in texts(message["blocks"], "mrkdwn") if t.startswith("*Description*")
    )
    assert description.endswith(CUT_MARKER)
    assert (
        description.removeprefix("*Description*\n").removesuffix(CUT_MARKER).replace("&amp;", "")
        == ""
    )


def test_the_button_value_fits_and_round_trips() -> None:
    desk = a_desk()
    change = desk.request()
    for button in buttons(card(change, desk.policy)):
        value = str(button["value"])
        assert len(value) <= 2000  # Slack's limit on a button's value
        digest = seen_digest(change.details)
        assert json.loads(value) == {"n": change.number, "s": "review", "d": digest}
        assert ids.Target.decode(value) == ids.Target(change.number, Stage.REVIEW, digest)


def test_an_emergency_in_review_can_be_approved_straight_away() -> None:
    _, desk, emergency = next(c for c in CHANGES if c[0] == "emergency in review")
    actions = [b["action_id"] for b in buttons(card(emergency, desk.policy))]
    assert ids.card_action_id(Action.APPROVE) in actions
    assert ids.card_action_id(Action.RECORD_REVIEW) in actions


def test_after_break_glass_the_review_and_test_lines_each_say_their_own() -> None:
    desk = a_desk()
    change = desk.stored(SCENARIOS["emergency after break-glass"](desk))

    text = all_mrkdwn(card(change, desk.policy)["blocks"])
    lines = [line for line in text.splitlines() if line.startswith(("*Review*", "*Test evidence*"))]

    assert len(lines) == 2
    review, evidence = (line.split(": ", 1)[1] for line in lines)
    assert review != evidence
    assert "not tested before deployment" in evidence


def test_a_freeze_over_the_change_is_on_its_card() -> None:
    desk = a_desk()
    change = desk.normal_change_in(Stage.DEPLOY)
    window = desk.stored(change).details.window
    assert window is not None
    freeze = f"""
[[freeze]]
name = "Failover <!channel>"
reason = "The primary is being failed over."
start = {window.start.replace(tzinfo=None).isoformat()}
end = {window.end.replace(tzinfo=None).isoformat()}
"""
    frozen = replace(desk, policy=a_policy(extra=freeze))
    mrkdwn = all_mrkdwn(card(frozen.stored(change), frozen.policy, desk.clock.now())["blocks"])
    assert "❄️ *Frozen:* the freeze “Failover &lt;!channel&gt;” (The primary" in mrkdwn
    assert_safe_mrkdwn(mrkdwn)
    unfrozen = all_mrkdwn(card(desk.stored(change), desk.policy, desk.clock.now())["blocks"])
    assert "❄️" not in unfrozen


def test_a_section_slack_would_refuse_is_refused_when_built() -> None:
    """Blocks are plain dicts now: what slack_sdk's objects refused, the builders refuse."""
    with pytest.raises(ValueError, match="text or fields"):
        section("")
    with pytest.raises(ValueError, match="at most 10 fields"):
        section("", fields=["x"] * 11)
    assert section("", fields=["x"] * 10)["fields"][9] == {"type": "mrkdwn", "text": "x"}
