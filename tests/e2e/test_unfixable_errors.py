"""Errors that retrying cannot fix are logged once with what to do, shown to the person whose
change they hold up, and do not block other changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import BotProcess, eventually, policy_toml
from tests.e2e.steps import normal_request


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(slack: SlackStandIn, workdir: Path) -> AsyncIterator[BotProcess]:
    # No changes channel: each card goes where /change was typed.
    policy = policy_toml(changes_channel="")
    env = {"CHANGEBOT_SWEEP_SECONDS": "0.3"}
    process = await BotProcess(slack, workdir, policy=policy, env=env).start()
    try:
        yield process
    finally:
        process.stop()


async def request_in(driver: SlackDriver, channel: str, title: str) -> None:
    await driver.slash_command("U0ALICE", "/change", channel=channel)
    await eventually(lambda: driver.open_modal_for("U0ALICE"))
    reply = await driver.submit_modal("U0ALICE", normal_request(**{ids.TITLE: title}))
    assert reply.status == 200 and not (reply.body or {}).get("errors"), reply.text


async def test_a_change_that_cannot_be_shown_is_explained_to_its_requester_once(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    await request_in(driver, "G0SECRET", "Held up by a private channel")
    told = await eventually(
        lambda: [m for m in slack.dms("U0ALICE") if "won't let me show it" in m.get("text", "")]
    )
    assert "CHG-" in told[0]["text"]

    # Another change, requested where the bot can post, is not held up behind it.
    await request_in(driver, "C0INCIDENT", "Goes through anyway")
    await eventually(
        lambda: any(
            "Goes through anyway" in str(m.get("blocks")) for m in slack.messages("C0INCIDENT")
        )
    )
    # Still told only once, however often the first is retried; the log says what to do.
    assert len([m for m in slack.dms("U0ALICE") if "won't let me show it" in m["text"]]) == 1
    assert bot.output().count("cannot show change") == 1
