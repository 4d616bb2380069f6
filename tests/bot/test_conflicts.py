"""Two changes in the same place at the same time: the second is requested with a warning in
its form (not refused), each card links the other, and when one moves away both cards say so.
The whole bot in this process (tests/bot/in_process.py), the forms submitted as Slack does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import ids
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually
from tests.e2e.steps import (
    cards,
    latest,
    normal_request,
    open_request_form,
    request_change,
    step_with_form,
)
from workflows.stages import Action


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path) as served:
        yield served


def text_of(message: dict[str, Any]) -> str:
    return str(message.get("blocks"))


def overlap_line(message: dict[str, Any]) -> str:
    return next(
        (line for line in text_of(message).split("\\n") if "Overlaps" in line), "no overlap shown"
    )


async def test_an_overlapping_request_is_warned_and_each_card_links_the_other(
    bot: InProcess,
) -> None:
    values = normal_request(**{ids.SERVICES: "payments, ledger", ids.TITLE: "Rotate ledger keys"})
    first = await request_change(
        bot.driver, bot.slack, **{ids.SERVICES: "payments"}, **_same(values)
    )
    await open_request_form(bot.driver, bot.slack, "U0BOB")
    answer = await bot.driver.submit_modal("U0BOB", values)

    # Requested, and the form turns into a warning naming the other change.
    assert answer.status == 200, answer.text
    assert answer.body["response_action"] == "update", answer.body
    warning = str(answer.body["view"]["blocks"])
    assert "CHG-0002 is requested" in warning
    assert "Overlaps CHG-0001* “Upgrade Postgres to 16.4” on payments" in warning
    assert bot.trail("CHG-0002")[0].entry.details["conflicts"] == ["CHG-0001"]

    second = (await eventually(lambda: cards(bot.slack)[1:]))[0]
    first_link = f"https://changebot-test.slack.com/archives/{first['channel']}/p"
    second_line = await eventually(lambda: _linked(latest(bot.slack, second), "CHG-0001"))
    assert first_link + first["ts"].replace(".", "") in second_line
    first_line = await eventually(lambda: _linked(latest(bot.slack, first), "CHG-0002"))
    assert "“Rotate ledger keys” on payments" in first_line


async def test_a_window_moved_away_takes_the_overlap_off_both_cards(bot: InProcess) -> None:
    values = normal_request()
    first = await request_change(bot.driver, bot.slack, **_same(values))
    await open_request_form(bot.driver, bot.slack, "U0BOB")
    await bot.driver.submit_modal("U0BOB", values)
    second = (await eventually(lambda: cards(bot.slack)[1:]))[0]
    await eventually(lambda: _linked(latest(bot.slack, first), "CHG-0002"))
    await eventually(lambda: _linked(latest(bot.slack, second), "CHG-0001"))

    later = values[ids.WINDOW_START] + timedelta(days=1)
    await step_with_form(
        bot.driver,
        bot.slack,
        "U0BOB",
        second,
        Action.EDIT,
        {ids.WINDOW_START: later, ids.WINDOW_END: later + timedelta(hours=1)},
    )

    await eventually(lambda: "Overlaps" not in text_of(latest(bot.slack, first)))
    await eventually(lambda: "Overlaps" not in text_of(latest(bot.slack, second)))


async def test_the_open_list_marks_the_changes_that_overlap(bot: InProcess) -> None:
    values = normal_request()
    await request_change(bot.driver, bot.slack, **_same(values))
    await request_change(bot.driver, bot.slack, **{ids.SERVICES: "search"}, **_same(values))
    await open_request_form(bot.driver, bot.slack, "U0BOB")
    await bot.driver.submit_modal("U0BOB", values)

    reply = await bot.driver.slash_command("U0BOB", "/change", "list open")

    lines = [block["text"]["text"] for block in reply.body["blocks"][1:]]
    assert [line.split("·")[-1].strip() for line in lines] == [
        "⚠️ overlaps CHG-0001",  # CHG-0003
        "Normal",  # CHG-0002 is on another service
        "⚠️ overlaps CHG-0003",  # CHG-0001
    ], lines


def _linked(message: dict[str, Any], ref: str) -> str | None:
    line = overlap_line(message)
    return line if f"|{ref}>" in line else None


def _same(values: dict[str, Any]) -> dict[str, Any]:
    """The window of `values`, for another request to share (requests get distinct windows
    unless a test says otherwise)."""
    return {ids.WINDOW_START: values[ids.WINDOW_START], ids.WINDOW_END: values[ids.WINDOW_END]}
