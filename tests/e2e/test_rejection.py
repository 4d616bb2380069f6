"""Rejection sends a change back to Request with a reason; the requester resubmits it."""

from __future__ import annotations

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import eventually
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

REASON = "No rollback tested for the replicas; try it on staging first."


async def reach_approve(driver: SlackDriver, slack: SlackStandIn, card: dict[str, object]) -> None:
    await step_with_form(
        driver,
        slack,
        "U0BOB",
        card,
        Action.RECORD_REVIEW,
        {ids.ASSESSMENT: "Looks sound.", ids.REVIEW_RISK: "low"},
    )
    await eventually(lambda: "add_test_evidence" in buttons(latest(slack, card)))
    await step_with_form(
        driver,
        slack,
        "U0ALICE",
        card,
        Action.ADD_TEST_EVIDENCE,
        {ids.EVIDENCE: "Staging upgraded; suite green."},
    )
    await eventually(lambda: "approve" in buttons(latest(slack, card)))


async def test_an_approver_rejects_with_a_reason_and_the_requester_resubmits(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Rotate the billing DB password"})
    await reach_approve(driver, slack, card)

    form = await open_form(driver, slack, "U0CAROL", card, Action.REJECT)
    assert form["callback_id"] == ids.REJECT_MODAL
    assert ids.REASON in [b.get("block_id") for b in form["blocks"]]
    answer = await driver.submit_modal("U0CAROL", {ids.REASON: REASON})
    assert answer.status == 200 and not answer.body, answer.text

    rejected = await eventually(
        lambda: "▶️ Request" in str(latest(slack, card)["blocks"]) and latest(slack, card)
    )
    assert buttons(rejected) == ["submit", "edit", "cancel"]
    assert "Rejected" in str(rejected["blocks"]) and REASON in str(rejected["blocks"])
    assert "Approvals:* 0 of 1" in str(rejected["blocks"])
    told = await eventually(
        lambda: [m for m in slack.dms("U0ALICE") if "rejected your change" in m["text"]]
    )
    assert REASON in told[0]["text"] and "<@U0CAROL>" in told[0]["text"]
    assert any("rejected it in Approve" in t and REASON in t for t in thread_texts(slack, card))

    await click(driver, slack, "U0ALICE", card, Action.SUBMIT)
    await eventually(lambda: buttons(latest(slack, card))[:1] == ["record_review"])
    await reach_approve(driver, slack, card)
    await click(driver, slack, "U0CAROL", card, Action.APPROVE)
    deploy = await eventually(
        lambda: (
            buttons(latest(slack, card)) == ["start_deployment", "edit", "cancel"]
            and latest(slack, card)
        )
    )
    assert "Approvals:* 1 of 1" in str(deploy["blocks"])
    assert sum("submitted it for review" in t for t in thread_texts(slack, card)) == 2


async def test_a_rejection_needs_a_reason(slack: SlackStandIn, driver: SlackDriver) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Resize the search cluster"})
    await open_form(driver, slack, "U0BOB", card, Action.REJECT)

    answer = await driver.submit_modal("U0BOB", {ids.REASON: "   "})

    assert answer.body["response_action"] == "errors"
    assert list(answer.body["errors"]) == [ids.REASON]
    assert buttons(latest(slack, card)) == ["record_review", "reject", "edit", "cancel"]
    await driver.close_modal("U0BOB")
