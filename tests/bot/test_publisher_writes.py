"""What a delivery writes before its first reply: nothing while the lease is surely this
replica's (the card's progress goes with the next write); past half the lease, the progress
is written first, which proves the lease is still held. Between two replies the first is
always put on record. The whole bot in this process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session

from storage.outbox import PublicationRow
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually
from tests.e2e.steps import (
    buttons,
    cards,
    latest,
    normal_request,
    open_request_form,
    review,
    thread_texts,
)


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path) as served:
        yield served


@contextmanager
def progress_writes(bot: InProcess) -> Iterator[list[float]]:
    """When progress is written under a lease (not the release, not its clean-up)."""
    seen: list[float] = []

    def look(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sets = " ".join(statement.split()).partition(" WHERE ")[0]
        progress = sets.startswith("UPDATE publications SET") and "card_version" in sets
        if progress and "lease_owner" not in sets:
            seen.append(time.time())

    engine = bot.bot.services.engine
    event.listen(engine, "before_cursor_execute", look)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", look)


def replies_since(bot: InProcess, since: float) -> list[float]:
    """When the bot posted in a thread since `since`."""
    return [
        c.at
        for c in bot.slack.calls
        if c.method == "chat.postMessage" and c.params.get("thread_ts") and c.at >= since
    ]


async def requested_and_shown(bot: InProcess) -> dict[str, Any]:
    await open_request_form(bot.driver, bot.slack, "U0ALICE")
    await bot.driver.submit_modal("U0ALICE", normal_request())
    card = await eventually(lambda: (cards(bot.slack) or [None])[0])
    await eventually(lambda: "record_review" in buttons(latest(bot.slack, card)))
    await eventually(lambda: delivered(bot, 1))  # its replies too: the next step starts clean
    return card


def delivered(bot: InProcess, number: int) -> bool:
    """The change's news all in Slack: nothing due, nobody delivering it."""
    with Session(bot.bot.services.engine) as session:
        pub = session.get(PublicationRow, number)
        return pub is not None and pub.due_at is None and not pub.lease_owner


async def reviewed(bot: InProcess, card: dict[str, Any]) -> None:
    await review(bot.driver, bot.slack, card)
    await eventually(lambda: any("reviewed it" in t for t in thread_texts(bot.slack, card)))
    await eventually(lambda: delivered(bot, 1))


async def test_a_reply_under_a_lease_surely_held_needs_no_write_before_it(bot: InProcess) -> None:
    card = await requested_and_shown(bot)
    began = time.time()
    with progress_writes(bot) as writes:
        await reviewed(bot, card)
    first_reply = min(replies_since(bot, began))
    assert not [at for at in writes if at < first_reply]


async def test_past_half_the_lease_the_progress_is_written_before_the_reply(
    bot: InProcess,
) -> None:
    card = await requested_and_shown(bot)
    bot.bot.publisher.lease = bot.bot.publisher.lease * 0  # never surely held
    began = time.time()
    with progress_writes(bot) as writes:
        await reviewed(bot, card)
    first_reply = min(replies_since(bot, began))
    assert [at for at in writes if at < first_reply]
