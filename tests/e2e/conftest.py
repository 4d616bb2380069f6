"""One Slack stand-in and one `changebot serve` per test module, on the module's event loop.

Starting the bot is most of an end-to-end test's cost, so the tests of a module share it;
they stay independent by using their own titles and counting what is new, never totals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import SIGNING_SECRET, SLOW_MACHINE, BotProcess, workspace

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every e2e test runs on its module's loop, where the shared stand-in lives."""
    for item in items:
        if item.path.parent == HERE:
            item.add_marker(pytest.mark.asyncio(loop_scope="module"), append=False)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(workspace()) as standin:
        yield standin


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bot")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(slack: SlackStandIn, workdir: Path) -> AsyncIterator[BotProcess]:
    process = await BotProcess(slack, workdir).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def driver(slack: SlackStandIn, bot: BotProcess) -> SlackDriver:
    return SlackDriver(bot.url + "/slack/events", SIGNING_SECRET, slack, timeout=SLOW_MACHINE)
