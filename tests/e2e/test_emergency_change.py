"""An emergency change declared mid-incident, chased until its post-change review is in."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import CHANGEBOT, BotProcess, eventually, policy_toml
from tests.e2e.steps import CHANGES, buttons, latest, step_with_form, thread_texts
from workflows.stages import Action

INCIDENT = "C0INCIDENT"
FAST_CHASE = (
    policy_toml()
    .replace('review_deadline = "20s"', 'review_deadline = "6s"')
    .replace('reminder_every = "5s"', 'reminder_every = "2s"')
    .replace('escalation_every = "5s"', 'escalation_every = "2s"')
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(slack: SlackStandIn, workdir: Path) -> AsyncIterator[BotProcess]:
    process = BotProcess(slack, workdir, policy=FAST_CHASE, env={"CHANGEBOT_SWEEP_SECONDS": "0.3"})
    await process.start()
    try:
        yield process
    finally:
        process.stop()


def audit(bot: BotProcess) -> list[dict[str, Any]]:
    out = subprocess.run(
        [CHANGEBOT, "audit", "export", "--format", "jsonl"],
        env={**os.environ, **bot.env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


async def card_of(slack: SlackStandIn, channel: str, ref: str) -> dict[str, Any]:
    found = await eventually(
        lambda: [m for m in slack.messages(channel) if ref in str(m.get("blocks") or "")]
    )
    return found[0]


def reminders(slack: SlackStandIn, user: str) -> list[dict[str, Any]]:
    return [m for m in slack.dms(user) if "Reminder" in m.get("text", "")]


def escalations(slack: SlackStandIn, user: str) -> list[dict[str, Any]]:
    """Past the deadline: "Due now and overdue from now on", then "Overdue by ..."."""
    return [m for m in slack.dms(user) if m.get("text", "").startswith("🚨")]


async def test_emergency_change_runs_from_one_line_through_reminders_escalation_and_review(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    line = "Roll back checkout to v41, payments failing https://incidents.example.com/42"
    answer = await driver.slash_command("U0ALICE", "/change", f"emergency {line}", channel=INCIDENT)
    assert answer.status == 200 and "CHG-" in answer.text
    assert answer.elapsed < 3.0
    ref = re.search(r"CHG-\d+", answer.text).group(0)  # type: ignore[union-attr]

    card = await card_of(slack, CHANGES, ref)
    copy = await card_of(slack, INCIDENT, ref)
    assert "incidents.example.com/42" in str(card["blocks"])
    assert copy["ts"] != card["ts"]
    assert "add details" in str(card["blocks"]).lower()
    await eventually(lambda: any("S0APPROVERS" in t for t in thread_texts(slack, card)))

    # One approval by a member of the approvers' user group stands for review and test.
    await driver.click("U0DAVE", latest(slack, card), ids.card_action_id(Action.APPROVE))
    await eventually(lambda: "start_deployment" in buttons(latest(slack, card)))
    await driver.click("U0ALICE", latest(slack, card), ids.card_action_id(Action.START_DEPLOYMENT))
    await eventually(lambda: "record_outcome" in buttons(latest(slack, card)))
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.RECORD_OUTCOME, {ids.OUTCOME: "successful"}
    )

    # Reminders to the owner, then escalation past the deadline to the policy owner.
    await eventually(lambda: reminders(slack, "U0ALICE"), timeout=6)
    await eventually(lambda: escalations(slack, "U0ALICE"), timeout=12)
    await eventually(
        lambda: any("policy" in m.get("text", "") for m in slack.dms("U0CAROL")), timeout=6
    )
    await eventually(lambda: any("overdue" in t for t in thread_texts(slack, card)), timeout=6)

    # The owner writes the review from a reminder's button; it closes the change.
    reminder = reminders(slack, "U0ALICE")[-1]
    modals_before = len(slack.modals("U0ALICE"))
    await driver.click("U0ALICE", reminder, ids.WRITE_REVIEW)
    await eventually(lambda: len(slack.modals("U0ALICE")) > modals_before)
    reply = await driver.submit_modal(
        "U0ALICE",
        {
            ids.WHAT_WAS_DONE: "Rolled checkout back to v41.",
            ids.WHY_IT_COULD_NOT_WAIT: "Payments were failing for every customer.",
            ids.ROOT_CAUSE: "https://incidents.example.com/42",
            ids.CLASSIFICATION_JUSTIFIED: "yes",
            ids.FOLLOW_UPS: "Add a canary for payment errors.",
            ids.CONTRIBUTED_TO_INCIDENT: "no",
            ids.OWED_PREFIX + "description": "v42 broke card payments; rolled back.",
            ids.OWED_PREFIX + "rollback": "Redeploy v42 once fixed.",
            ids.OWED_PREFIX + "test_evidence": "Checkout smoke test green after rollback.",
        },
    )
    assert reply.status == 200 and not (reply.body or {}).get("errors"), reply.text
    await eventually(lambda: "Closed" in str(latest(slack, card)["blocks"]))

    actions = [event["action"] for event in audit(bot) if event["ref"] == ref]
    assert "reminder_sent" in actions and "reminder_escalated" in actions
    assert actions[-2:] == ["post_change_review_submitted", "closed"]
    sent = len(reminders(slack, "U0ALICE")) + len(escalations(slack, "U0ALICE"))
    assert sent == actions.count("reminder_sent") + actions.count("reminder_escalated")
    # No reminder after the review is in.
    await asyncio.sleep(1.0)
    assert [e["action"] for e in audit(bot) if e["ref"] == ref][-1] == "closed"


async def test_emergency_without_text_explains_the_one_line_form(
    driver: SlackDriver,
) -> None:
    answer = await driver.slash_command("U0ALICE", "/change", "emergency", channel=INCIDENT)
    assert answer.status == 200 and "one line" in answer.text


async def test_an_emergency_declared_where_the_bot_cannot_post_links_the_requester_to_it(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    await driver.slash_command("U0ALICE", "/change", "emergency Flush the CDN", channel="G0SECRET")
    notice = await eventually(
        lambda: [m for m in slack.dms("U0ALICE") if "can't post" in m.get("text", "")]
    )
    assert "/invite @changebot" in notice[0]["text"]


async def test_break_glass_waits_for_the_approvers_then_owes_a_retrospective_approval(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    declared = time.monotonic()
    answer = await driver.slash_command(
        "U0ALICE", "/change", "emergency Block abusive IP range", channel=INCIDENT
    )
    ref = re.search(r"CHG-\d+", answer.text).group(0)  # type: ignore[union-attr]
    card = await card_of(slack, CHANGES, ref)
    # Until break-glass opens, the card says when, and offers no button for it.
    assert "Break-glass opens" in str(card["blocks"])
    assert "break_glass" not in buttons(latest(slack, card))

    # No approver acted within break_glass_after (4 s): the card is drawn again with the
    # button, though nothing happened to the change, and the requester goes ahead alone.
    await eventually(lambda: "break_glass" in buttons(latest(slack, card)), timeout=15)
    assert time.monotonic() - declared >= 3.5
    assert "Break-glass is open" in str(latest(slack, card)["blocks"])
    await driver.click("U0ALICE", latest(slack, card), ids.card_action_id(Action.BREAK_GLASS))
    await eventually(lambda: "start_deployment" in buttons(latest(slack, card)))
    assert "Retrospective approval owed" in str(latest(slack, card)["blocks"])

    # Only an approver can give the approval owed: the thread asks the approvers for it and
    # the requester is told so, never asked to give it.
    asked = await eventually(
        lambda: [t for t in thread_texts(slack, card) if "retrospective approval is due" in t],
        timeout=8,
    )
    assert "<!subteam^S0APPROVERS>" in asked[0] and "<@U0CAROL>" in asked[0]
    assert "please approve or reject it on the card" in asked[0]
    told = [m["text"] for m in reminders(slack, "U0ALICE") if ref in m.get("text", "")]
    assert told and "Only an approver can give it" in told[0]
    assert not any("Please write it now" in text for text in told)

    await driver.click("U0CAROL", latest(slack, card), ids.card_action_id(Action.APPROVE))
    await eventually(lambda: "Approved in retrospect" in str(latest(slack, card)["blocks"]))
    chases = ("reminder_sent", "reminder_escalated")  # past the deadline, they escalate
    chased = len([e for e in audit(bot) if e["ref"] == ref and e["action"] in chases])
    await asyncio.sleep(2.5)  # a reminder's cadence: none comes once it is approved
    after = [e for e in audit(bot) if e["ref"] == ref and e["action"] in chases]
    assert len(after) == chased
