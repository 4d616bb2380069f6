"""The driver's requests are what Slack puts on the wire: signed, encoded, shaped like Slack's."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from slack_sdk.signature import SignatureVerifier

from standin import SlackDriver, SlackStandIn, sign
from tests.standin.conftest import Recorded, Recorder
from tests.standin.sample_bot import SIGNING_SECRET

PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "slack" / "payloads"

BUTTON_MESSAGE = [
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "CHG-1",
            },
            {
                "type": "static_select",
                "action_id": "risk",
                "options": [
                    {"text": {"type": "plain_text", "text": "Low"}, "value": "low"},
                    {"text": {"type": "plain_text", "text": "High"}, "value": "high"},
                ],
            },
        ],
    }
]


def recorded_fixture(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def interaction(request: Recorded) -> dict[str, Any]:
    return dict(json.loads(dict(parse_qsl(request.body.decode()))["payload"]))


def verifies(request: Recorded) -> bool:
    return SignatureVerifier(SIGNING_SECRET).is_valid_request(request.body, request.headers)


def test_sign_matches_slacks_documented_test_vector() -> None:
    vector = recorded_fixture("signature.slack-docs-vector.json")

    signature = sign(
        vector["body"].encode(), vector["signing_secret"], vector["x_slack_request_timestamp"]
    )

    assert signature == vector["x_slack_signature"]


async def test_slash_command_is_a_signed_form_with_slacks_fields_in_order(
    recording_driver: SlackDriver, recorder: Recorder
) -> None:
    await recording_driver.slash_command("U0ALICE", "/change", "new db", channel="changes")

    [request] = recorder.requests
    fields = parse_qsl(request.body.decode(), keep_blank_values=True)
    recorded = recorded_fixture("slash_command.bolt-js.json")
    expected_order = [k for k in recorded if not k.startswith("enterprise")]
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert verifies(request)
    assert [k for k, _ in fields] == expected_order
    assert dict(fields)["command"] == "/change"
    assert dict(fields)["channel_id"] == "C0CHANGES"


async def test_an_old_timestamp_no_longer_verifies(
    recording_driver: SlackDriver, recorder: Recorder
) -> None:
    body = b"token=x&command=%2Fchange"
    stale = int(time.time()) - 301
    headers = {
        "X-Slack-Request-Timestamp": str(stale),
        "X-Slack-Signature": sign(body, SIGNING_SECRET, stale),
    }

    await recording_driver.post_raw(body, headers=headers)

    assert not verifies(recorder.requests[0])


async def test_block_actions_carry_the_message_and_the_buttons_value(
    slack: SlackStandIn, recording_driver: SlackDriver, recorder: Recorder
) -> None:
    posted = slack.state.messages.post("C0CHANGES", {"user": "U0BOT", "blocks": BUTTON_MESSAGE})

    await recording_driver.click("U0BOB", {**posted, "channel": "C0CHANGES"}, "approve")

    payload = interaction(recorder.requests[0])
    recorded = recorded_fixture("block_actions.bolt-python.json")
    assert verifies(recorder.requests[0])
    assert set(recorded) <= set(payload)
    assert set(recorded["actions"][0]) <= set(payload["actions"][0])
    assert payload["actions"][0]["value"] == "CHG-1"
    assert payload["actions"][0]["block_id"] == "decide"
    assert payload["container"]["message_ts"] == posted["ts"]
    assert payload["message"]["ts"] == posted["ts"]
    assert payload["user"]["id"] == "U0BOB"


async def test_choosing_from_a_menu_sends_the_selected_option(
    slack: SlackStandIn, recording_driver: SlackDriver, recorder: Recorder
) -> None:
    posted = slack.state.messages.post("C0CHANGES", {"user": "U0BOT", "blocks": BUTTON_MESSAGE})

    await recording_driver.click("U0BOB", {**posted, "channel": "C0CHANGES"}, "risk", "high")

    action = interaction(recorder.requests[0])["actions"][0]
    assert action["type"] == "static_select"
    assert action["selected_option"]["value"] == "high"


async def test_a_click_in_a_modal_sends_the_views_current_state(
    slack: SlackStandIn, recording_driver: SlackDriver, recorder: Recorder
) -> None:
    view = slack.state.surfaces.open(
        "U0ALICE", {**modal(), "blocks": modal()["blocks"] + BUTTON_MESSAGE}
    )

    await recording_driver.click("U0ALICE", view, "risk", "high", inputs={"title": "typed"})

    payload = interaction(recorder.requests[0])
    values = payload["view"]["state"]["values"]
    assert payload["container"] == {"type": "view", "view_id": view["id"]}
    assert values["decide"]["risk"]["selected_option"]["value"] == "high"
    assert values["title_block"]["title"]["value"] == "typed"


async def test_a_click_in_a_thread_names_the_thread(
    slack: SlackStandIn, recording_driver: SlackDriver, recorder: Recorder
) -> None:
    root = slack.add_user_message("C0CHANGES", "U0ALICE", "please approve")
    slack.state.messages.post(
        "C0CHANGES", {"user": "U0BOT", "blocks": BUTTON_MESSAGE, "thread_ts": root["ts"]}
    )

    await recording_driver.click("U0BOB", None, "approve")

    container = interaction(recorder.requests[0])["container"]
    assert container["thread_ts"] == root["ts"]


async def test_every_request_brings_a_trigger_the_stand_in_accepts(
    slack: SlackStandIn, recording_driver: SlackDriver, recorder: Recorder
) -> None:
    await recording_driver.slash_command("U0ALICE", "/change")
    trigger_id = dict(parse_qsl(recorder.requests[0].body.decode()))["trigger_id"]

    assert slack.state.surfaces.redeem(trigger_id) == "U0ALICE"


async def test_view_submission_carries_the_modal_and_typed_state(
    slack: SlackStandIn, recording_driver: SlackDriver, recorder: Recorder
) -> None:
    slack.state.surfaces.open("U0ALICE", modal())

    await recording_driver.submit_modal("U0ALICE", {"title": "DB", "risk_block": "low"})

    payload = interaction(recorder.requests[0])
    recorded = recorded_fixture("view_submission.bolt-python.json")
    view = payload["view"]
    assert set(recorded) <= set(payload)
    assert set(recorded["view"]) <= set(view)
    assert (view["callback_id"], view["private_metadata"]) == ("form", "meta")
    assert view["state"]["values"]["title_block"]["title"] == {
        "type": "plain_text_input",
        "value": "DB",
    }
    assert view["state"]["values"]["risk_block"]["risk"]["selected_option"]["value"] == "low"


async def test_events_are_signed_json_with_retry_headers_when_asked(
    recording_driver: SlackDriver, recorder: Recorder
) -> None:
    await recording_driver.send_event({"type": "app_mention", "user": "U0ALICE", "text": "hi"})
    await recording_driver.send_event(
        {"type": "app_mention"}, event_id="Ev42", retry_num=1, retry_reason="http_timeout"
    )

    first, retry = recorder.requests
    callback = json.loads(first.body)
    assert first.headers["Content-Type"] == "application/json"
    assert verifies(first)
    recorded = recorded_fixture("app_home_opened.event_callback.bolt-python.json")
    assert set(recorded) - {"enterprise_id"} <= set(callback)  # enterprise installs only
    assert callback["type"] == "event_callback"
    assert "X-Slack-Retry-Num" not in first.headers
    assert (retry.headers["X-Slack-Retry-Num"], retry.headers["X-Slack-Retry-Reason"]) == (
        "1",
        "http_timeout",
    )
    assert json.loads(retry.body)["event_id"] == "Ev42"


async def test_a_bot_slower_than_the_deadline_gets_no_reply(
    slack: SlackStandIn, recorder: Recorder
) -> None:
    recorder.delay = 1.0
    driver = SlackDriver(recorder.url, SIGNING_SECRET, slack, timeout=0.5)

    reply = await driver.send_event({"type": "app_mention"})

    assert reply.timed_out


async def test_the_bots_answer_is_returned_parsed(
    recording_driver: SlackDriver, recorder: Recorder
) -> None:
    recorder.answer = {"response_type": "ephemeral", "text": "ok"}

    reply = await recording_driver.slash_command("U0ALICE", "/change")

    assert reply.ok
    assert reply.body == {"response_type": "ephemeral", "text": "ok"}


def modal() -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": v}, "value": v} for v in ("low", "high")]
    return {
        "type": "modal",
        "callback_id": "form",
        "private_metadata": "meta",
        "title": {"type": "plain_text", "text": "Form"},
        "blocks": [
            {
                "type": "input",
                "block_id": "title_block",
                "label": {"type": "plain_text", "text": "Title"},
                "element": {"type": "plain_text_input", "action_id": "title"},
            },
            {
                "type": "input",
                "block_id": "risk_block",
                "label": {"type": "plain_text", "text": "Risk"},
                "element": {"type": "static_select", "action_id": "risk", "options": options},
            },
        ],
    }
