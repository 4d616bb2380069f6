"""Slack retries an event it thinks went unanswered; the bot handles each event_id once."""

from __future__ import annotations

import asyncio
from typing import Any

from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import eventually


def home_opened(slack: SlackStandIn, user: str) -> dict[str, Any]:
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": slack.workspace.dm_with(user).id,
        "tab": "home",
    }


def publishes(slack: SlackStandIn) -> int:
    return len(slack.calls_to("views.publish"))


async def test_a_retry_of_a_handled_event_publishes_the_home_view_once(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    before = publishes(slack)
    first = await driver.send_event(home_opened(slack, "U0ALICE"), event_id="EvRETRY0001")
    assert first.status == 200, first.text
    await eventually(lambda: publishes(slack) == before + 1)
    retry = await driver.send_event(
        home_opened(slack, "U0ALICE"),
        event_id="EvRETRY0001",
        retry_num=1,
        retry_reason="http_timeout",
    )
    assert retry.status == 200, retry.text
    await asyncio.sleep(1)
    assert publishes(slack) == before + 1


async def test_a_retry_of_an_event_never_handled_is_handled(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    before = publishes(slack)
    retry = await driver.send_event(
        home_opened(slack, "U0BOB"), event_id="EvRETRY0002", retry_num=2, retry_reason="timeout"
    )
    assert retry.status == 200, retry.text
    await eventually(lambda: publishes(slack) == before + 1)
