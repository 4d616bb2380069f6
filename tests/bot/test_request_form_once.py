"""The request form submitted twice at once (a Submit Slack retried while the first was still
being answered) is one change and one card. The whole bot in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually
from tests.e2e.steps import cards, normal_request, open_request_form, quiet


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path) as served:
        yield served


async def test_the_request_form_sent_twice_at_once_is_one_change(bot: InProcess) -> None:
    view = await open_request_form(bot.driver, bot.slack, "U0ALICE")
    values = normal_request()

    answers = await asyncio.gather(
        *(bot.driver.submit_modal("U0ALICE", values, view=view) for _ in range(2))
    )

    assert [a.status for a in answers] == [200, 200]
    await eventually(lambda: cards(bot.slack))
    await quiet(bot.slack)
    assert len(cards(bot.slack)) == 1
