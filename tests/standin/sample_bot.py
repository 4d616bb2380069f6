"""A Bolt app as small as possible that opens a modal, posts a button and publishes a Home tab.

It is not changebot: it only proves that what the driver sends is what Bolt expects from Slack,
over HTTP and Socket Mode, and that the bot's Web API calls land in the stand-in.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

SIGNING_SECRET = "standin-test-signing-secret"
CHANNEL = "C0CHANGES"

RISK_OPTIONS = [
    {"text": {"type": "plain_text", "text": label}, "value": value}
    for value, label in (("low", "Low"), ("high", "High"))
]

CHANGE_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "new_change",
    "private_metadata": "from-command",
    "title": {"type": "plain_text", "text": "New change"},
    "submit": {"type": "plain_text", "text": "Submit"},
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
            "element": {"type": "static_select", "action_id": "risk", "options": RISK_OPTIONS},
        },
        {
            "type": "input",
            "block_id": "when_block",
            "optional": True,
            "label": {"type": "plain_text", "text": "When"},
            "element": {"type": "datetimepicker", "action_id": "when"},
        },
    ],
}


def approve_button(title: str) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Change: {title}"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": title,
                }
            ],
        },
    ]


def build_app(token: str, base_url: str, seen_events: list[dict[str, Any]]) -> AsyncApp:
    """The app; every event it receives is appended to `seen_events`."""
    client = AsyncWebClient(token=token, base_url=base_url)
    app = AsyncApp(client=client, signing_secret=SIGNING_SECRET)

    @app.command("/change")
    async def open_form(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=CHANGE_MODAL)

    @app.view("new_change")
    async def submitted(ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient) -> None:
        values = view["state"]["values"]
        title = values["title_block"]["title"]["value"]
        if title == "bad":
            await ack(response_action="errors", errors={"title_block": "Too vague"})
            return
        await ack()
        risk = values["risk_block"]["risk"]["selected_option"]["value"]
        await client.chat_postMessage(
            channel=CHANNEL, text=f"{title} ({risk})", blocks=approve_button(title)
        )

    @app.action("approve")
    async def approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        title = body["actions"][0]["value"]
        if body["container"]["type"] == "view":
            return
        await client.chat_update(
            channel=body["container"]["channel_id"],
            ts=body["container"]["message_ts"],
            text=f"{title} approved by <@{body['user']['id']}>",
            blocks=[],
        )

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        seen_events.append(event)
        await client.views_publish(
            user_id=event["user"],
            view={"type": "home", "blocks": approve_button("from home")},
        )

    return app
