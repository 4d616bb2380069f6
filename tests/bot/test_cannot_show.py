"""A change Slack will not let the bot show is explained to its requester once per spell of
the problem: not again by another replica, nor after a restart, however often it is retried.
The whole bot in this process, and a second replica on the same database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import ids
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually, policy_toml
from tests.e2e.steps import normal_request

SECRET = "G0SECRET"  # private, and the bot is not in it
TOLD = "won't let me show it"


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    # No changes channel: each card goes where /change was typed.
    async with in_process(sqlite_template, tmp_path, policy_toml(changes_channel="")) as served:
        yield served


def told(bot: InProcess) -> list[dict[str, Any]]:
    return [m for m in bot.slack.dms("U0ALICE") if TOLD in m.get("text", "")]


def tries(bot: InProcess) -> int:
    return sum(
        1
        for call in bot.slack.calls
        if call.method == "chat.postMessage" and call.params.get("channel") == SECRET
    )


async def test_another_replica_retrying_does_not_tell_the_requester_again(bot: InProcess) -> None:
    await bot.driver.slash_command("U0ALICE", "/change", channel=SECRET)
    await eventually(lambda: bot.driver.open_modal_for("U0ALICE"))
    reply = await bot.driver.submit_modal("U0ALICE", normal_request(**{ids.TITLE: "Held up"}))
    assert reply.status == 200, reply.text
    await eventually(lambda: told(bot))
    before = tries(bot)

    replica = bot.replica()
    bot.clock.advance(minutes=2)  # past the publication's backoff
    assert await replica.publisher.sweep() == 1

    assert tries(bot) > before, "the other replica tried to show it again"
    assert len(told(bot)) == 1
