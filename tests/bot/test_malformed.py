"""Signed bodies not shaped as Slack sends them are refused (400) before anything runs, and
nothing is ever said to nobody."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.listeners.tell import Where, tell
from bot.malformed import problem
from standin import SlackStandIn, Workspace


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"type": "event_callback", "event": "x"}, "event is not an object with a type"),
        ({"type": "event_callback", "event": None}, "event is not an object with a type"),
        ({"type": "event_callback", "event": {"type": 3}}, "event is not an object with a type"),
        ({"type": "block_actions", "actions": []}, "without a user"),
        ([], "the body is not an object"),
        ({"command": "/change", "user_id": "U1"}, "a command without trigger_id"),
        (
            {"type": "event_callback", "event": {"type": "app_home_opened"}},
            "app_home_opened event without a user",
        ),
        (
            {"type": "event_callback", "event": {"type": "app_home_opened", "user": {"id": "U1"}}},
            "app_home_opened event without a user",
        ),
    ],
)
def test_a_body_without_what_listeners_need_is_refused(body: object, why: str) -> None:
    found = problem(body)
    assert found is not None and why in found


def test_a_well_formed_event_passes() -> None:
    body = {"type": "event_callback", "event": {"type": "app_home_opened", "user": "U1"}}
    assert problem(body) is None


async def test_nobody_is_told_anything_when_there_is_nobody() -> None:
    async with SlackStandIn(Workspace()) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)
        await tell(client, Where("", ""), "Something went wrong on my side.")
        await tell(client, {"type": "event_callback", "event": "x"}, "Again.")

        assert slack.calls == []
