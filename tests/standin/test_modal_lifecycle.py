"""What Slack does with a modal after the bot answers a submission or the user cancels."""

from __future__ import annotations

from typing import Any

import aiohttp

from standin import SlackDriver, SlackStandIn
from tests.standin.conftest import Recorder

ALICE = "U0ALICE"


def modal(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "step",
        "title": {"type": "plain_text", "text": title},
        "blocks": [],
        **extra,
    }


async def test_response_action_update_replaces_the_modal(
    slack: SlackStandIn, recording_driver: SlackDriver, recorder: Recorder
) -> None:
    opened = slack.state.surfaces.open(ALICE, modal("One"))
    recorder.answer = {"response_action": "update", "view": modal("Two")}

    await recording_driver.submit_modal(ALICE)

    [current] = slack.modals(ALICE)
    assert (current["id"], current["title"]["text"]) == (opened["id"], "Two")


async def test_response_action_push_stacks_and_clear_closes_all(
    slack: SlackStandIn, recording_driver: SlackDriver, recorder: Recorder
) -> None:
    slack.state.surfaces.open(ALICE, modal("One"))
    recorder.answer = {"response_action": "push", "view": modal("Two")}
    await recording_driver.submit_modal(ALICE)
    assert [v["title"]["text"] for v in slack.modals(ALICE)] == ["One", "Two"]

    recorder.answer = {"response_action": "clear"}
    await recording_driver.submit_modal(ALICE)

    assert slack.modals(ALICE) == []


async def test_cancel_tells_the_bot_only_when_asked(
    slack: SlackStandIn, recording_driver: SlackDriver, recorder: Recorder
) -> None:
    slack.state.surfaces.open(ALICE, modal("Quiet"))
    assert await recording_driver.close_modal(ALICE) is None

    slack.state.surfaces.open(ALICE, modal("Loud", notify_on_close=True))
    reply = await recording_driver.close_modal(ALICE)

    assert reply is not None and reply.ok
    assert len(recorder.requests) == 1
    assert slack.modals(ALICE) == []


async def test_response_url_replies_land_where_slack_would_put_them(
    slack: SlackStandIn,
) -> None:
    posted = slack.state.messages.post("C0CHANGES", {"user": "U0BOT", "text": "original"})
    command_url = slack.issue_response_url("C0CHANGES", ALICE)
    action_url = slack.issue_response_url("C0CHANGES", ALICE, message_ts=posted["ts"])

    async with aiohttp.ClientSession() as session:
        await session.post(command_url, json={"text": "only you"})
        await session.post(command_url, json={"text": "everyone", "response_type": "in_channel"})
        await session.post(action_url, json={"text": "replaced", "replace_original": True})

    assert [m["text"] for m in slack.ephemerals(ALICE)] == ["only you"]
    assert [m["text"] for m in slack.messages("C0CHANGES")] == ["replaced", "everyone"]


async def test_a_response_url_works_five_times(slack: SlackStandIn) -> None:
    url = slack.issue_response_url("C0CHANGES", ALICE)

    async with aiohttp.ClientSession() as session:
        statuses = [(await session.post(url, json={"text": "x"})).status for _ in range(6)]

    assert statuses == [200] * 5 + [404]
