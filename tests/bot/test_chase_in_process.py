"""An emergency change chased on a fake clock: the real bot in this process, its reminders
swept when the test moves time on (tests/bot/in_process.py). Each step that waited seconds for
a timer in a subprocess is a clock move here, so the cadences are exact, not `at least`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import ids
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually
from tests.e2e.steps import (
    CHANGES,
    EMERGENCY_REVIEW,
    approve_deploy_and_succeed,
    buttons,
    latest,
    quiet,
    thread_texts,
)
from workflows.events import Happened
from workflows.stages import Action

INCIDENT = "C0INCIDENT"
CHASES = (Happened.REMINDER_SENT, Happened.REMINDER_ESCALATED)


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path) as served:
        yield served


def dms(bot: InProcess, user: str, starting: str) -> list[str]:
    return [m["text"] for m in bot.slack.dms(user) if m.get("text", "").startswith(starting)]


def chased(bot: InProcess, ref: str) -> list[str]:
    return [a for a in bot.actions(ref) if a in CHASES]


async def declare(bot: InProcess, line: str) -> tuple[str, dict[str, Any]]:
    answer = await bot.driver.slash_command(
        "U0ALICE", "/change", f"emergency {line}", channel=INCIDENT
    )
    assert answer.status == 200, answer.text
    ref = re.search(r"CHG-\d+", answer.text).group(0)  # type: ignore[union-attr]
    card = await eventually(
        lambda: [m for m in bot.slack.messages(CHANGES) if ref in str(m.get("blocks") or "")]
    )
    return ref, card[0]


async def test_reminders_then_escalations_at_the_policys_cadence_until_the_review_is_in(
    bot: InProcess,
) -> None:
    slack, driver = bot.slack, bot.driver
    ref, card = await declare(bot, "Roll back checkout to v41 https://incidents.example.com/42")
    await approve_deploy_and_succeed(driver, slack, card)

    # review_deadline 20 s, reminder_every 5 s, escalation_every 5 s (tests/e2e/harness.py).
    await bot.advance(seconds=4.9)
    assert chased(bot, ref) == [], "nothing is due before the first reminder"
    await bot.advance(seconds=0.1)
    assert chased(bot, ref) == [Happened.REMINDER_SENT]
    await eventually(lambda: dms(bot, "U0ALICE", "⏰ Reminder"))
    for _ in range(3):  # at 10, 15 and 20 s: reminders, the last one due now
        await bot.advance(seconds=5)
    assert chased(bot, ref).count(Happened.REMINDER_SENT) == 3
    escalated = [Happened.REMINDER_SENT] * 3 + [Happened.REMINDER_ESCALATED]
    assert chased(bot, ref) == escalated, "the 20 s reminder is due now: an escalation"
    await bot.advance(seconds=5)
    assert chased(bot, ref) == [*escalated, Happened.REMINDER_ESCALATED]

    # Escalations reach the owner and the policy owner, and the thread says it is overdue.
    owner = await eventually(
        lambda: len(dms(bot, "U0ALICE", "🚨")) == 2 and dms(bot, "U0ALICE", "🚨")
    )
    assert "Overdue by 5s" in owner[-1]
    policy_owner = await eventually(
        lambda: [m for m in slack.dms("U0CAROL") if ref in m.get("text", "")]
    )
    assert "policy" in policy_owner[0]["text"]
    await eventually(lambda: any("overdue" in t for t in thread_texts(slack, card)))

    # The owner writes the review from a reminder's button; it closes the change.
    reminder = [m for m in slack.dms("U0ALICE") if "Reminder" in m.get("text", "")][-1]
    modals_before = len(slack.modals("U0ALICE"))
    await driver.click("U0ALICE", reminder, ids.WRITE_REVIEW)
    await eventually(lambda: len(slack.modals("U0ALICE")) > modals_before)
    reply = await driver.submit_modal("U0ALICE", EMERGENCY_REVIEW)
    assert reply.status == 200 and not (reply.body or {}).get("errors"), reply.text
    await eventually(lambda: "Closed" in str(latest(slack, card)["blocks"]))
    assert bot.actions(ref)[-2:] == [Happened.POST_CHANGE_REVIEW_SUBMITTED, Happened.CLOSED]

    # Every reminder recorded was delivered, and none comes once the review is in.
    sent = len(dms(bot, "U0ALICE", "⏰")) + len(dms(bot, "U0ALICE", "🚨"))
    assert sent == len(chased(bot, ref))
    await bot.advance(hours=1)
    assert bot.actions(ref)[-1] == Happened.CLOSED


async def test_break_glass_opens_on_time_then_an_approver_owes_a_retrospective_approval(
    bot: InProcess,
) -> None:
    slack, driver = bot.slack, bot.driver
    ref, card = await declare(bot, "Block abusive IP range")
    # Until break-glass opens (4 s after the declaration), the card says when, with no button.
    assert "Break-glass opens" in str(card["blocks"])
    assert "break_glass" not in buttons(latest(slack, card))
    # Nothing happened to the change, yet the card is drawn again with the button.
    await bot.advance(seconds=4)
    await eventually(lambda: "break_glass" in buttons(latest(slack, card)))
    assert "Break-glass is open" in str(latest(slack, card)["blocks"])
    await driver.click("U0ALICE", latest(slack, card), ids.card_action_id(Action.BREAK_GLASS))
    await eventually(lambda: "start_deployment" in buttons(latest(slack, card)))
    assert "Retrospective approval owed" in str(latest(slack, card)["blocks"])

    # Only an approver can give the approval owed: the thread asks the approvers for it and
    # the requester is told so, never asked to give it.
    await bot.advance(seconds=5)
    asked = await eventually(
        lambda: [t for t in thread_texts(slack, card) if "retrospective approval is due" in t]
    )
    assert "<!subteam^S0APPROVERS>" in asked[0] and "<@U0CAROL>" in asked[0]
    assert "please approve it on the card" in asked[0]
    told = [t for t in dms(bot, "U0ALICE", "⏰ Reminder") if ref in t]
    assert told and "Only an approver can give it" in told[0]
    assert not any("Please write it now" in text for text in told)

    await driver.click("U0CAROL", latest(slack, card), ids.card_action_id(Action.APPROVE))
    await eventually(lambda: "Approved in retrospect" in str(latest(slack, card)["blocks"]))
    before = chased(bot, ref)
    await bot.advance(minutes=10)  # many cadences: none comes once it is approved
    assert chased(bot, ref) == before


ALICE_DMS = {"channel": "U0ALICE"}


async def review_owed(bot: InProcess) -> tuple[str, dict[str, Any]]:
    """An emergency change deployed: Alice owes its review, first reminded at 5 s. Slack has
    gone quiet (the change's own messages are out), so a fault set now meets the chase."""
    ref, card = await declare(bot, "Roll back checkout to v41 https://incidents.example.com/42")
    await approve_deploy_and_succeed(bot.driver, bot.slack, card)
    await quiet(bot.slack, 0.5)
    return ref, card


async def test_an_owner_slack_will_not_take_reminders_is_chased_at_the_cadence_and_the_thread_told(
    bot: InProcess,
) -> None:
    slack = bot.slack
    ref, card = await review_owed(bot)
    # Alice has left: Slack refuses every direct message to her, for good.
    slack.fail_next("chat.postMessage", "channel_not_found", times=100, where=ALICE_DMS)

    await bot.advance(seconds=5)
    assert chased(bot, ref) == [Happened.REMINDER_SENT], "recorded, though it did not reach her"
    for _ in range(3):  # sweeps before the next reminder is due: no knocking again meanwhile
        await bot.advance(seconds=1)
    assert chased(bot, ref) == [Happened.REMINDER_SENT]
    assert bot.trail(ref)[-1].entry.details["slack_error"] == "channel_not_found"

    told = await eventually(
        lambda: [t for t in thread_texts(slack, card) if "would not take the reminder" in t]
    )
    assert "<@U0ALICE> (`channel_not_found`)" in told[0]
    await bot.advance(seconds=2)  # 10 s: the next reminder, at the cadence
    assert chased(bot, ref) == [Happened.REMINDER_SENT] * 2

    # At the deadline the escalation still reaches the policy owner, whom the owner's refusal
    # must not cost their copy.
    for _ in range(2):
        await bot.advance(seconds=5)
    assert chased(bot, ref)[-1] == Happened.REMINDER_ESCALATED
    await eventually(lambda: [m for m in slack.dms("U0CAROL") if ref in m.get("text", "")])


async def test_a_reminder_slack_rate_limits_waits_out_retry_after_between_sweeps_not_in_one(
    bot: InProcess,
) -> None:
    ref, _ = await review_owed(bot)
    # Slack says to come back in two minutes: longer than the lease the chaser holds.
    bot.slack.fail_next("chat.postMessage", "ratelimited", retry_after=120, where=ALICE_DMS)

    await asyncio.wait_for(bot.advance(seconds=5), timeout=10)
    assert chased(bot, ref) == [], "refused: nothing was sent, nothing recorded"
    await bot.advance(seconds=1)  # the next sweep: Slack said two minutes
    assert chased(bot, ref) == []
    await bot.advance(seconds=120)  # past the review's 20 s deadline by now: an escalation
    assert chased(bot, ref) == [Happened.REMINDER_ESCALATED]
    await eventually(lambda: dms(bot, "U0ALICE", "🚨"))
