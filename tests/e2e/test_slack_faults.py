"""Slack failing 30% of the calls that show changes (500s, timeouts after posting, rate
limits) loses nothing: once it heals, every card shows its change's final state and every
thread reply is there exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import SIGNING_SECRET, BotProcess, eventually, workspace
from tests.e2e.steps import (
    CHANGES,
    buttons,
    click,
    latest,
    request_change,
    review_and_test,
    step_with_form,
)
from workflows.stages import Action

SHOWING = [
    "chat.postMessage",
    "chat.update",
    "chat.getPermalink",
    "conversations.replies",
    "conversations.history",
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slack() -> AsyncIterator[SlackStandIn]:
    # A "timeout" posts the message and answers only after the bot has given up waiting.
    async with SlackStandIn(workspace(), client_timeout=3.0) as standin:
        yield standin


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(slack: SlackStandIn, workdir: Path) -> AsyncIterator[BotProcess]:
    env = {"CHANGEBOT_SWEEP_SECONDS": "0.3", "CHANGEBOT_LEASE_SECONDS": "8"}
    process = await BotProcess(slack, workdir, env=env).start()
    try:
        yield process
    finally:
        process.stop()


async def lifecycle(driver: SlackDriver, slack: SlackStandIn, title: str) -> dict[str, object]:
    card = await request_change(driver, slack, **{ids.TITLE: title})
    await review_and_test(driver, slack, card)
    await click(driver, slack, "U0CAROL", card, Action.APPROVE)
    await eventually(lambda: "start_deployment" in buttons(latest(slack, card)), timeout=30)
    await click(driver, slack, "U0ALICE", card, Action.START_DEPLOYMENT)
    await eventually(lambda: "record_outcome" in buttons(latest(slack, card)), timeout=30)
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.RECORD_OUTCOME, {ids.OUTCOME: "successful"}
    )
    return card


def markers(slack: SlackStandIn, card: dict[str, object]) -> Counter[tuple[int, int]]:
    found: Counter[tuple[int, int]] = Counter()
    for message in slack.thread(CHANGES, str(card["ts"]))[1:]:
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if "seq" in payload:
            found[(payload["seq"], payload["effect"])] += 1
    return found


async def test_cards_and_replies_converge_exactly_once_through_a_flaky_slack(
    slack: SlackStandIn, bot: BotProcess
) -> None:
    driver = SlackDriver(bot.url + "/slack/events", SIGNING_SECRET, slack, timeout=10)
    slack.fail_rate(0.3, ["500", "timeout", "ratelimited"], seed=7, methods=SHOWING)
    cards = []
    for n in range(3):
        cards.append(await lifecycle(driver, slack, f"Flaky Slack {n}"))
    failed = [c for c in slack.calls if c.fault is not None]
    assert len(failed) >= 10, "the stand-in should really have failed calls"
    slack.heal()

    for card in cards:
        await eventually(lambda c=card: "Closed" in str(latest(slack, c)["blocks"]), timeout=40)
        # The card is drawn before the replies that explain it: one backing off after a
        # failure may still be on its way.
        await eventually(lambda c=card: len({seq for seq, _ in markers(slack, c)}) >= 9, timeout=40)
    await asyncio.sleep(2.0)  # anything still retrying has had its chance to repeat itself
    for card in cards:
        seen = markers(slack, card)
        assert seen and set(seen.values()) == {1}, seen
        # Every step of the change is in its thread: requested ... closed.
        assert len({seq for seq, _ in seen}) >= 9, seen
        assert not buttons(latest(slack, card))


async def test_a_reply_whose_connection_drops_after_slack_posted_it_appears_once(
    slack: SlackStandIn, bot: BotProcess
) -> None:
    """slack_sdk would resend after a dropped connection; the publisher looks first instead."""
    driver = SlackDriver(bot.url + "/slack/events", SIGNING_SECRET, slack, timeout=10)
    card = await request_change(driver, slack, **{ids.TITLE: "Dropped connection"})
    await eventually(lambda: markers(slack, card))
    slack.fail_next("chat.postMessage", "dropped", times=2)
    await review_and_test(driver, slack, card)
    await eventually(lambda: "approve" in buttons(latest(slack, card)), timeout=30)
    await asyncio.sleep(2.0)  # anything still retrying has had its chance to repeat itself
    assert [c for c in slack.calls if c.fault == "dropped"], "the stand-in should have dropped"
    seen = markers(slack, card)
    assert len(seen) >= 3 and set(seen.values()) == {1}, seen
