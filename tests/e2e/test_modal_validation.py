"""Bad input in the request form is answered field by field, in the form; nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import BotProcess, audit_trail
from tests.e2e.steps import cards, normal_request, open_request_form, settled

NOW = datetime.now(UTC)
HOUR = timedelta(hours=1)

CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    # what is typed, the input that shows the error, words of the error
    "a blank title": ({ids.TITLE: "   "}, ids.TITLE, "required"),
    "a title over the limit": ({ids.TITLE: "x" * 151}, ids.TITLE, "150 characters (this has 151)"),
    "a window that ends before it starts": (
        {ids.WINDOW_START: NOW + 3 * HOUR, ids.WINDOW_END: NOW + 2 * HOUR},
        ids.WINDOW_END,
        "ends before it starts",
    ),
    "a window in the past": (
        {ids.WINDOW_START: NOW - 3 * HOUR, ids.WINDOW_END: NOW - 2 * HOUR},
        ids.WINDOW_END,
        "in the past",
    ),
    "a link that is not a web address": (
        {ids.PULL_REQUEST: "javascript:alert(1)"},
        ids.PULL_REQUEST,
        "web address",
    ),
    "no rollback plan": ({ids.ROLLBACK_PLAN: ""}, ids.ROLLBACK_PLAN, "rollback plan"),
    "a description of only spaces": ({ids.DESCRIPTION: "  "}, ids.DESCRIPTION, "required"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_the_request_form_shows_the_error_on_the_field_and_stores_nothing(
    case: str, slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    typed, block_id, words = CASES[case]
    before = (len(cards(slack)), len(audit_trail(bot)))
    form = await open_request_form(driver, slack, "U0ALICE")

    answer = await driver.submit_modal("U0ALICE", normal_request(**typed))

    assert answer.status == 200, answer.text
    assert answer.body["response_action"] == "errors", answer.body
    assert list(answer.body["errors"]) == [block_id]
    assert words in answer.body["errors"][block_id]
    assert slack.open_modal("U0ALICE")["id"] == form["id"]  # type: ignore[index]
    await settled(bot, slack)
    assert (len(cards(slack)), len(audit_trail(bot))) == before


async def test_a_corrected_form_is_then_accepted(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    before = len(cards(slack))
    await open_request_form(driver, slack, "U0ALICE")
    first = await driver.submit_modal("U0ALICE", normal_request(**{ids.TITLE: "x" * 151}))
    assert first.body["response_action"] == "errors"

    second = await driver.submit_modal("U0ALICE", normal_request(**{ids.TITLE: "Fixed title"}))

    assert second.status == 200 and not second.body, second.text
    assert slack.open_modal("U0ALICE") is None
    await settled(bot, slack)
    assert len(cards(slack)) == before + 1
