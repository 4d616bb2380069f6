"""The bot accepts requests shaped like the ones Slack really sends, keys it never reads and all.

The samples in ../shared/slack/payloads come from Slack's own SDKs and docs (see SOURCES.md
there). Each test keeps a sample's shape and every key it has, puts our people, channel,
trigger and action where Slack would, signs it and posts it to the running bot.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot import ids
from standin import Reply, SlackDriver, SlackStandIn
from standin.blocks import find_element
from standin.inputs import state_values
from tests.e2e.harness import BotProcess, eventually
from tests.e2e.steps import (
    CHANGES,
    buttons,
    cards,
    latest,
    normal_request,
    open_request_form,
    request_change,
    review_and_test,
    settled,
)
from workflows.stages import Action

PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "slack" / "payloads"
SLASH_SAMPLES = sorted(p.name for p in PAYLOADS.glob("slash_command.*.json"))

pytestmark = pytest.mark.skipif(not PAYLOADS.is_dir(), reason=f"no samples at {PAYLOADS}")


def sample(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def overlay(base: Any, ours: Any) -> Any:
    """`base` with `ours` written over it, key by key, so keys only `base` has survive."""
    if isinstance(base, dict) and isinstance(ours, dict):
        merged = copy.deepcopy(base)
        for key, value in ours.items():
            merged[key] = overlay(base.get(key), value)
        return merged
    return copy.deepcopy(ours)


async def post_form(driver: SlackDriver, fields: dict[str, Any]) -> Reply:
    return await driver.post_raw(urlencode(fields).encode())


async def post_interaction(driver: SlackDriver, payload: dict[str, Any]) -> Reply:
    return await post_form(driver, {"payload": json.dumps(payload)})


async def post_event(driver: SlackDriver, envelope: dict[str, Any]) -> Reply:
    return await driver.post_raw(json.dumps(envelope).encode(), "application/json")


def slash_fields(slack: SlackStandIn, base: dict[str, Any], user: str, text: str) -> dict[str, Any]:
    ours = {
        "command": ids.COMMAND,
        "text": text,
        "user_id": user,
        "user_name": slack.workspace.user_name(user),
        "channel_id": slack.workspace.find_channel(CHANGES).id,  # type: ignore[union-attr]
        "channel_name": "changes",
        "trigger_id": slack.issue_trigger(user),
        "response_url": slack.issue_response_url(CHANGES, user),
    }
    return {**base, **ours}  # the sample's order, its other keys kept as they are


def card_button(message: dict[str, Any], action: Action) -> dict[str, Any]:
    """One entry of `actions` for pressing `action` on the card, as Slack reports it."""
    found = find_element(message["blocks"], ids.card_action_id(action))
    assert found is not None, f"no {action} button on the card"
    block, element = found
    return {
        "action_id": element["action_id"],
        "block_id": block["block_id"],
        "text": {**element["text"], "emoji": True},
        "value": element["value"],
        "type": "button",
        "action_ts": "1596530385.194939",
    }


def in_message(
    slack: SlackStandIn, user: str, message: dict[str, Any], action: dict[str, Any]
) -> dict[str, Any]:
    """What a block_actions payload says about who clicked, where and what."""
    channel = slack.workspace.find_channel(CHANGES).id  # type: ignore[union-attr]
    return {
        "user": {"id": user, "username": slack.workspace.user_name(user), "team_id": "T111"},
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": slack.issue_trigger(user),
        "channel": {"id": channel, "name": "changes"},
        "response_url": slack.issue_response_url(CHANGES, user, message["ts"]),
        "actions": [action],
    }


# -- slash commands ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SLASH_SAMPLES)
async def test_a_slash_command_shaped_like_the_sample_opens_the_form(
    name: str, slack: SlackStandIn, driver: SlackDriver
) -> None:
    shown_before = (slack.open_modal("U0ALICE") or {}).get("id")

    reply = await post_form(driver, slash_fields(slack, sample(name), "U0ALICE", ""))

    assert reply.status == 200, reply.text
    form = await eventually(
        lambda: (
            (slack.open_modal("U0ALICE") or {}).get("id") not in (None, shown_before)
            and slack.open_modal("U0ALICE")
        )
    )
    assert form["callback_id"] == ids.REQUEST_MODAL
    await driver.close_modal("U0ALICE")


async def test_a_slash_command_with_every_key_slack_may_send_is_answered(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    shape = sample("shape.slash_command.java-slack-sdk.json")
    fields = slash_fields(slack, shape, "U0ERIN", "show CHG-9999")
    # A form body says false as Slack writes it (bolt-js's recorded request), not Python's False.
    fields = {key: "false" if value is False else value for key, value in fields.items()}

    reply = await post_form(driver, fields)

    assert reply.status == 200, reply.text
    assert reply.body["response_type"] == "ephemeral"
    assert "There is no change CHG-9999." in reply.body["text"]


# -- block_actions -----------------------------------------------------------------------------


async def test_a_button_click_shaped_like_the_sample_approves(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Payloads: approve by sample"})
    await _to_approve(driver, slack, card)
    shown = latest(slack, card)
    payload = overlay(
        sample("block_actions.bolt-python.json"),
        in_message(slack, "U0CAROL", shown, card_button(shown, Action.APPROVE)),
    )
    assert payload["team"]["enterprise_id"] == "E111"  # the sample's keys are still there

    reply = await post_interaction(driver, payload)

    assert reply.status == 200, reply.text
    await eventually(lambda: "start_deployment" in buttons(latest(slack, card)))


async def test_a_button_click_with_every_key_slack_may_send_opens_its_form(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Payloads: every key"})
    shown = latest(slack, card)
    shape = sample("shape.block_actions.java-slack-sdk.json")
    ours = in_message(slack, "U0BOB", shown, card_button(shown, Action.REJECT))
    ours["actions"] = [overlay(shape["actions"][0], ours["actions"][0])]
    payload = overlay(shape, ours)
    assert "selected_option" in payload["actions"][0] and "function_data" in payload

    reply = await post_interaction(driver, payload)

    assert reply.status == 200, reply.text
    form = await eventually(lambda: slack.open_modal("U0BOB"))
    assert form["callback_id"] == ids.REJECT_MODAL
    await driver.close_modal("U0BOB")


# -- view_submission ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "view_submission.bolt-python.json",
        "view_submission.response_urls.bolt-python.json",
        "shape.view_submission.java-slack-sdk.json",
    ],
)
async def test_a_form_submission_shaped_like_the_sample_posts_the_card(
    name: str, slack: SlackStandIn, driver: SlackDriver
) -> None:
    form = await open_request_form(driver, slack, "U0ALICE")
    title = f"Payloads: submitted like {name}"
    values = state_values(form["blocks"], normal_request(**{ids.TITLE: title}))
    ours = {
        "type": "view_submission",
        "user": {"id": "U0ALICE", "username": "alice", "name": "alice"},
        "trigger_id": slack.issue_trigger("U0ALICE"),
        "view": {**form, "state": {"values": values}},
    }
    before = len(cards(slack))

    reply = await post_interaction(driver, overlay(sample(name), ours))

    assert reply.status == 200, reply.text
    assert not reply.body, reply.body  # an empty ack closes the form
    posted = await eventually(lambda: cards(slack)[before:])
    assert title in str(posted[0]["blocks"])
    await driver.close_modal("U0ALICE")


# -- app_home_opened ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "app_home_opened.event_callback.bolt-python.json",
        "shape.app_home_opened.java-slack-sdk.json",
    ],
)
async def test_an_app_home_opened_event_shaped_like_the_sample_publishes_home(
    name: str, slack: SlackStandIn, driver: SlackDriver
) -> None:
    published = len(slack.calls_to("views.publish"))
    ours = {
        "type": "event_callback",
        "event_id": f"Ev{name[:8]}",
        "event": {
            "type": "app_home_opened",
            "user": "U0DAVE",
            "channel": slack.workspace.dm_with("U0DAVE").id,
            "tab": "home",
        },
    }

    reply = await post_event(driver, overlay(sample(name), ours))

    assert reply.status == 200, reply.text
    await eventually(lambda: len(slack.calls_to("views.publish")) > published)
    home = slack.home_view("U0DAVE")
    assert home is not None and home["type"] == "home"


# -- what is not ours --------------------------------------------------------------------------


async def test_an_unknown_button_gets_a_polite_answer(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Payloads: unknown buttons"})
    await settled(bot, slack)
    shown = latest(slack, card)
    for action_id, value in (("change.fly_to_the_moon", "{}"), ("a", "click_me_123")):
        told = len(slack.ephemerals("U0ERIN"))
        pressed = {**card_button(shown, Action.REJECT), "action_id": action_id, "value": value}
        payload = overlay(
            sample("block_actions.bolt-python.json"), in_message(slack, "U0ERIN", shown, pressed)
        )

        reply = await post_interaction(driver, payload)

        assert reply.status == 200, reply.text
        answer = await eventually(lambda n=told: slack.ephemerals("U0ERIN")[n:])
        assert "not one I know" in answer[0]["text"]
    await settled(bot, slack)
    assert latest(slack, card) == shown


async def test_a_button_carrying_a_value_that_is_not_ours_gets_a_polite_answer(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Payloads: forged value"})
    await settled(bot, slack)
    shown = latest(slack, card)
    told = len(slack.ephemerals("U0CAROL"))
    pressed = {**card_button(shown, Action.REJECT), "value": "click_me_123"}

    payload = overlay(
        sample("block_actions.bolt-python.json"), in_message(slack, "U0CAROL", shown, pressed)
    )

    reply = await post_interaction(driver, payload)

    assert reply.status == 200, reply.text
    answer = await eventually(lambda: slack.ephemerals("U0CAROL")[told:])
    assert "not one I know" in answer[0]["text"]


async def test_a_form_that_is_not_ours_gets_a_polite_answer(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    payload = overlay(
        sample("view_submission.bolt-python.json"),
        {"user": {"id": "U0ERIN"}, "trigger_id": slack.issue_trigger("U0ERIN")},
    )
    assert payload["view"]["callback_id"] == "view-id"

    reply = await post_interaction(driver, payload)

    assert reply.status == 200, reply.text
    assert reply.body["response_action"] == "errors"
    assert list(reply.body["errors"]) == ["hspI"]  # the sample form's one input
    assert "not one I know" in reply.body["errors"]["hspI"]


async def _to_approve(driver: SlackDriver, slack: SlackStandIn, card: dict[str, Any]) -> None:
    await review_and_test(driver, slack, card)
