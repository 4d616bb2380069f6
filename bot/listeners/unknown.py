"""What no other listener claims: a button or form from an older version of changebot, or one
that was never ours. Bolt would answer 404, which Slack shows as an error icon or a broken form;
the person gets a sentence instead. Registered last, so it only catches what is left."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.listeners.tell import tell

log = logging.getLogger(__name__)
ANYTHING = re.compile(".*")
WHY = "perhaps it is from an older version of changebot"


def register(app: AsyncApp) -> None:
    app.action(ANYTHING)(unknown_action)
    app.view(ANYTHING)(unknown_form)


async def unknown_action(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
) -> None:
    await ack()
    log.info("answered an unknown action %r", action.get("action_id"))
    await tell(client, body, f"That button is not one I know ({WHY}). Nothing was changed.")


async def unknown_form(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
) -> None:
    log.info("answered an unknown form %r", view.get("callback_id"))
    inputs = [
        b["block_id"]
        for b in view.get("blocks") or []
        if isinstance(b, dict) and b.get("type") == "input" and b.get("block_id")
    ]
    if inputs:
        message = f"This form is not one I know ({WHY}): close it and start again."
        await ack(response_action="errors", errors={inputs[0]: message})
        return
    await ack()
    await tell(client, body, f"That form is not one I know ({WHY}). Nothing was changed.")
