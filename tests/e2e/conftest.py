from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import SIGNING_SECRET, BotProcess, workspace


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(workspace()) as standin:
        yield standin


@pytest.fixture
async def bot(slack: SlackStandIn, tmp_path: Path) -> AsyncIterator[BotProcess]:
    process = await BotProcess(slack, tmp_path).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def driver(slack: SlackStandIn, bot: BotProcess) -> SlackDriver:
    return SlackDriver(bot.url + "/slack/events", SIGNING_SECRET, slack)
