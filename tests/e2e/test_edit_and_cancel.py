"""Editing what a change says after approval withdraws the approvals; cancelling ends it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import BotProcess, audit_trail, eventually
from tests.e2e.steps import (
    buttons,
    click,
    latest,
    open_form,
    request_change,
    step_with_form,
    thread_texts,
)
from workflows.stages import Action


def approvals_line(message: dict[str, Any]) -> str:
    return next(
        b["text"]["text"]
        for b in message["blocks"]
        if "Approvals:*" in str((b.get("text") or {}).get("text"))
    ).splitlines()[0]


def ref_of(card: dict[str, Any]) -> str:
    return str(card["text"]).split(" ")[0]


async def a_high_risk_change_in_approve(
    driver: SlackDriver, slack: SlackStandIn, title: str
) -> dict[str, Any]:
    """High risk needs two approvals, so one approval leaves the change in Approve."""
    card = await request_change(
        driver, slack, **{ids.TITLE: title, ids.RISK: "high", ids.IMPLEMENTER: "U0ERIN"}
    )
    await step_with_form(
        driver,
        slack,
        "U0BOB",
        card,
        Action.RECORD_REVIEW,
        {ids.ASSESSMENT: "Risky but well planned.", ids.REVIEW_RISK: "high"},
    )
    await eventually(lambda: "add_test_evidence" in buttons(latest(slack, card)))
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.ADD_TEST_EVIDENCE, {ids.EVIDENCE: "Staging ok."}
    )
    await eventually(lambda: "approve" in buttons(latest(slack, card)))
    await click(driver, slack, "U0CAROL", card, Action.APPROVE)
    await eventually(lambda: "1 of 2" in approvals_line(latest(slack, card)))
    return card


async def test_editing_after_an_approval_withdraws_it_visibly(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    title = "Move sessions to the new Redis cluster"
    card = await a_high_risk_change_in_approve(driver, slack, title)
    assert "<@U0CAROL>" in approvals_line(latest(slack, card))

    form = await open_form(driver, slack, "U0ALICE", card, Action.EDIT)
    assert form["callback_id"] == ids.EDIT_MODAL
    title_input = next(b for b in form["blocks"] if b.get("block_id") == ids.TITLE)
    assert title_input["element"]["initial_value"] == title  # prefilled with the request
    later = datetime.now(UTC) + timedelta(days=1)
    answer = await driver.submit_modal(
        "U0ALICE", {ids.WINDOW_START: later, ids.WINDOW_END: later + timedelta(hours=1)}
    )
    assert answer.status == 200 and not answer.body, answer.text

    edited = await eventually(
        lambda: "0 of 2" in approvals_line(latest(slack, card)) and latest(slack, card)
    )
    assert "<@U0CAROL>" not in approvals_line(edited)
    assert "▶️ Approve" in str(edited["blocks"])
    assert "approve" in buttons(edited)
    withdrawn = await eventually(
        lambda: [t for t in thread_texts(slack, card) if "were withdrawn" in t]
    )
    # The approver whose approval was withdrawn hears of it through the mention in the thread.
    assert "<@U0CAROL>" in withdrawn[0] and "window changed" in withdrawn[0]
    assert [a for _, _, a in audit_trail(bot, ref_of(card))][-2:] == [
        "edited",
        "approvals_withdrawn",
    ]
    # Carol may approve again: her earlier approval no longer counts.
    await click(driver, slack, "U0CAROL", card, Action.APPROVE)
    await eventually(lambda: "1 of 2" in approvals_line(latest(slack, card)))


async def test_the_requester_is_told_when_someone_else_edits_away_the_approvals(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    card = await a_high_risk_change_in_approve(driver, slack, "Shard the events table")
    told_before = len(slack.dms("U0ALICE"))

    # Erin implements the change, so she may edit it too.
    await open_form(driver, slack, "U0ERIN", card, Action.EDIT)
    answer = await driver.submit_modal("U0ERIN", {ids.SERVICES: "events-db, analytics"})
    assert answer.status == 200 and not answer.body, answer.text

    told = await eventually(
        lambda: [m for m in slack.dms("U0ALICE")[told_before:] if "withdrawn" in m["text"]]
    )
    assert "<@U0ERIN> edited your change" in told[0]["text"]
    assert "<@U0CAROL>" in told[0]["text"] and "services" in told[0]["text"]
    assert "0 of 2" in approvals_line(latest(slack, card))


async def test_an_edit_that_changes_nothing_withdraws_nothing(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await a_high_risk_change_in_approve(driver, slack, "Enable TLS 1.3 on the edge")
    trail = audit_trail(bot, ref_of(card))

    await open_form(driver, slack, "U0ALICE", card, Action.EDIT)
    answer = await driver.submit_modal("U0ALICE", {})
    assert answer.status == 200 and not answer.body, answer.text

    assert audit_trail(bot, ref_of(card)) == trail
    assert "1 of 2" in approvals_line(latest(slack, card))


async def test_the_requester_cancels_with_a_reason_and_the_card_shows_it_without_buttons(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Migrate the CDN config"})
    cancel = next(
        e
        for b in card["blocks"]
        for e in b.get("elements") or []
        if e.get("action_id") == ids.card_action_id(Action.CANCEL)
    )
    assert cancel.get("confirm"), "cancelling asks for confirmation first"

    form = await open_form(driver, slack, "U0ALICE", card, Action.CANCEL)
    assert form["callback_id"] == ids.CANCEL_MODAL
    answer = await driver.submit_modal("U0ALICE", {ids.REASON: "The vendor postponed."})
    assert answer.status == 200 and not answer.body, answer.text

    cancelled = await eventually(lambda: not buttons(latest(slack, card)) and latest(slack, card))
    shown = str(cancelled["blocks"])
    assert "⛔ Cancelled" in shown and "The vendor postponed." in shown
    assert not any(b["type"] == "actions" for b in cancelled["blocks"])
    line = await eventually(lambda: [t for t in thread_texts(slack, card) if "cancelled it" in t])
    assert "<@U0ALICE>" in line[0] and "The vendor postponed." in line[0]
    assert audit_trail(bot, ref_of(card))[-1][1:] == ("U0ALICE", "cancelled")
