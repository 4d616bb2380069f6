"""A Normal change, run from Slack by four people, through all five stages to Closed."""

from __future__ import annotations

import os
import subprocess

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import CHANGEBOT, BotProcess, eventually
from tests.e2e.steps import (
    buttons,
    click,
    latest,
    open_request_form,
    request_change,
    stage_shown,
    step_with_form,
    thread_texts,
)
from workflows.stages import Action


async def test_normal_change_runs_through_all_five_stages_to_closed(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await request_change(driver, slack)
    assert "CHG-0001" in str(card["blocks"])
    assert buttons(card) == ["record_review", "reject", "edit", "cancel"]
    confirmation = await eventually(lambda: slack.dms("U0ALICE"))
    assert "CHG-0001" in confirmation[0]["text"] and "thread" in confirmation[0]["text"]

    await step_with_form(
        driver,
        slack,
        "U0BOB",
        card,
        Action.RECORD_REVIEW,
        {ids.ASSESSMENT: "Replicas checked; low blast radius.", ids.REVIEW_RISK: "low"},
    )
    await stage_shown(slack, card, "add_test_evidence")
    await step_with_form(
        driver,
        slack,
        "U0ALICE",
        card,
        Action.ADD_TEST_EVIDENCE,
        {ids.EVIDENCE: "Upgraded staging; integration suite green."},
    )
    await eventually(lambda: any("S0APPROVERS" in t for t in thread_texts(slack, card)))

    await click(driver, slack, "U0CAROL", card, Action.APPROVE)
    await stage_shown(slack, card, "start_deployment")
    await click(driver, slack, "U0ALICE", card, Action.START_DEPLOYMENT)
    await stage_shown(slack, card, "record_outcome")
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.RECORD_OUTCOME, {ids.OUTCOME: "successful"}
    )
    closed = await eventually(lambda: not buttons(latest(slack, card)) and latest(slack, card))
    assert "Closed" in str(closed["blocks"])

    replies = await eventually(
        lambda: len(thread_texts(slack, card)) >= 8 and thread_texts(slack, card)
    )
    assert any("reviewed" in t for t in replies)
    assert any("approved" in t for t in replies)
    approval_dm = await eventually(
        lambda: [m for m in slack.dms("U0ALICE") if "approved" in m.get("text", "")]
    )
    assert approval_dm

    verified = subprocess.run(
        [CHANGEBOT, "audit", "verify"],
        env={**os.environ, **bot.env},
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    assert "intact" in verified.stdout


async def test_the_bot_keeps_its_connections_to_slack_open_across_calls(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    """Opening a connection per Web API call cost more than the call; one per client will do."""
    first = len(slack.calls)
    await request_change(driver, slack, title="Rotate the TLS certificate of the edge")
    await open_request_form(driver, slack, "U0BOB")
    calls = slack.calls[first:]
    peers = {call.peer for call in calls}
    assert len(calls) >= 5 and "" not in peers
    assert len(peers) <= 3, f"{len(calls)} calls over {len(peers)} connections"
