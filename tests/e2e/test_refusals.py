"""Whoever clicks what they may not do is told why, alone; nothing changes or is posted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot import ids
from standin import Reply, SlackDriver, SlackStandIn
from tests.e2e.harness import BotProcess, audit_trail, eventually
from tests.e2e.steps import (
    CHANGES,
    buttons,
    click,
    click_on_copy,
    latest,
    request_change,
    settled,
    step_with_form,
    thread_texts,
)
from workflows.stages import Action


async def in_approve(
    driver: SlackDriver, slack: SlackStandIn, bot: BotProcess, title: str
) -> dict[str, Any]:
    """A high-risk change (two approvals needed) waiting for its approvals."""
    card = await request_change(driver, slack, **{ids.TITLE: title, ids.RISK: "high"})
    await step_with_form(
        driver,
        slack,
        "U0BOB",
        card,
        Action.RECORD_REVIEW,
        {ids.ASSESSMENT: "Fine.", ids.REVIEW_RISK: "high"},
    )
    await eventually(lambda: "add_test_evidence" in buttons(latest(slack, card)))
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.ADD_TEST_EVIDENCE, {ids.EVIDENCE: "Green."}
    )
    await eventually(lambda: "approve" in buttons(latest(slack, card)))
    await settled(bot, slack)
    return card


async def approved_by(
    driver: SlackDriver, slack: SlackStandIn, bot: BotProcess, card: dict[str, Any], *approvers: str
) -> None:
    for count, approver in enumerate(approvers, 1):
        await click(driver, slack, approver, card, Action.APPROVE)
        await eventually(lambda n=count: f"{n} of 2" in str(latest(slack, card)["blocks"]))
    await settled(bot, slack)


async def assert_refused(
    slack: SlackStandIn,
    bot: BotProcess,
    card: dict[str, Any],
    user: str,
    attempt: Callable[[], Awaitable[Reply]],
    explanation: str,
) -> None:
    """`attempt` is answered with an ephemeral `explanation` to `user`, and changes nothing."""
    before = (latest(slack, card), thread_texts(slack, card), audit_trail(bot))
    posted_before = len(slack.calls_to("chat.postMessage"))
    told_before = len(slack.ephemerals(user))
    opened_before = len(slack.calls_to("views.open"))

    reply = await attempt()

    assert reply.status == 200, reply.text  # acknowledged, so Slack shows no error of its own
    told = await eventually(lambda: slack.ephemerals(user)[told_before:])
    assert len(told) == 1 and explanation in told[0]["text"], told
    assert told[0]["channel"] == slack.workspace.find_channel(CHANGES).id  # type: ignore[union-attr]
    await settled(bot, slack)
    assert (latest(slack, card), thread_texts(slack, card), audit_trail(bot)) == before
    assert len(slack.calls_to("chat.postMessage")) == posted_before
    assert len(slack.calls_to("views.open")) == opened_before


async def test_the_requester_cannot_approve_their_own_change(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await in_approve(driver, slack, bot, "Raise the API rate limits")
    await assert_refused(
        slack,
        bot,
        card,
        "U0ALICE",
        lambda: click(driver, slack, "U0ALICE", card, Action.APPROVE),
        "someone else must review or approve it",
    )


async def test_someone_who_is_not_an_approver_cannot_approve(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await in_approve(driver, slack, bot, "Switch the mail provider")
    await assert_refused(
        slack,
        bot,
        card,
        "U0ERIN",
        lambda: click(driver, slack, "U0ERIN", card, Action.APPROVE),
        "Only approvers named in the change policy can do that.",
    )


async def test_an_approval_counts_once(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await in_approve(driver, slack, bot, "Turn on query logging")
    await approved_by(driver, slack, bot, card, "U0CAROL")
    await assert_refused(
        slack,
        bot,
        card,
        "U0CAROL",
        lambda: click(driver, slack, "U0CAROL", card, Action.APPROVE),
        "already approved",
    )
    assert "1 of 2" in str(latest(slack, card)["blocks"])


async def test_a_button_on_an_older_copy_of_the_card_is_refused(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await in_approve(driver, slack, bot, "Drop the legacy queue")
    old_copy = latest(slack, card)  # what a client that has not caught up still shows
    await approved_by(driver, slack, bot, card, "U0CAROL", "U0DAVE")
    assert "start_deployment" in buttons(latest(slack, card))

    await assert_refused(
        slack,
        bot,
        card,
        "U0DAVE",
        lambda: click_on_copy(driver, slack, "U0DAVE", old_copy, Action.REJECT),
        "That button is from an older card",
    )
    await assert_refused(
        slack,
        bot,
        card,
        "U0CAROL",
        lambda: click_on_copy(driver, slack, "U0CAROL", old_copy, Action.APPROVE),
        "was in Approve and is now in Deploy and verify",
    )


async def test_a_bystander_cannot_start_the_deployment(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await in_approve(driver, slack, bot, "Upgrade the load balancers")
    await approved_by(driver, slack, bot, card, "U0CAROL", "U0DAVE")
    await assert_refused(
        slack,
        bot,
        card,
        "U0ERIN",
        lambda: click(driver, slack, "U0ERIN", card, Action.START_DEPLOYMENT),
        "Only the requester or the implementer",
    )


async def test_the_requester_cannot_review_their_own_change_and_no_form_opens(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Trim the audit log index"})
    await settled(bot, slack)
    await assert_refused(
        slack,
        bot,
        card,
        "U0ALICE",
        lambda: click(driver, slack, "U0ALICE", card, Action.RECORD_REVIEW),
        "someone else must review or approve it",
    )
    assert slack.open_modal("U0ALICE") is None
