"""A step is taken on the change as the person saw it: a form opened, or a card drawn,
before an edit is refused once the change says something else, and the person is told to
look again. The whole bot in this process (tests/bot/in_process.py)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import ids
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually
from tests.e2e.steps import (
    click_on_copy,
    latest,
    open_form,
    request_change,
    review_and_test,
    step_with_form,
)
from workflows.stages import Action

EDITED = "was edited since this was shown to you: look at its card again"


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path) as served:
        yield served


async def test_a_review_of_the_change_before_its_edit_is_refused(bot: InProcess) -> None:
    """Bob opened the review form; Alice then dropped the rollback plan. Bob's review of the
    change he read is not recorded as a review of the one it has become."""
    card = await request_change(bot.driver, bot.slack)
    await open_form(bot.driver, bot.slack, "U0BOB", card, Action.RECORD_REVIEW)
    bob_is_reading = bot.slack.open_modal("U0BOB")
    await step_with_form(
        bot.driver,
        bot.slack,
        "U0ALICE",
        card,
        Action.EDIT,
        {ids.DESCRIPTION: "Drops the old column for good."},
    )

    answer = await bot.driver.submit_modal(
        "U0BOB", {ids.ASSESSMENT: "Easy to roll back.", ids.REVIEW_RISK: "low"},
        view=bob_is_reading,
    )  # fmt: skip

    errors = (answer.body or {}).get("errors") or {}
    assert any(EDITED in message for message in errors.values()), answer.text
    assert "reviewed" not in bot.actions("CHG-0001")


async def test_an_approval_from_a_card_drawn_before_an_edit_is_refused(bot: InProcess) -> None:
    card = await request_change(bot.driver, bot.slack)
    await review_and_test(bot.driver, bot.slack, card)
    as_carol_saw_it = copy.deepcopy(latest(bot.slack, card))
    await step_with_form(
        bot.driver, bot.slack, "U0ALICE", card, Action.EDIT, {ids.TITLE: "Something else"}
    )
    await eventually(lambda: "Something else" in str(latest(bot.slack, card)["blocks"]))
    told = len(bot.slack.ephemerals("U0CAROL"))

    # Her client had not caught up: she presses Approve on the card as she saw it.
    await click_on_copy(bot.driver, bot.slack, "U0CAROL", as_carol_saw_it, Action.APPROVE)

    refusal = await eventually(lambda: bot.slack.ephemerals("U0CAROL")[told:])
    assert EDITED in refusal[0]["text"]
    assert "approved" not in bot.actions("CHG-0001")
    # From the card as it is now, the approval goes through.
    await bot.driver.click("U0CAROL", latest(bot.slack, card), ids.card_action_id(Action.APPROVE))
    await eventually(lambda: "approved" in bot.actions("CHG-0001"))
