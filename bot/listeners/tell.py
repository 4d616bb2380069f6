"""Telling one person something only they should see: an ephemeral where they clicked,
otherwise a direct message. Refusals change nothing and are never posted to the thread."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

#: The answer to a button whose value or ID is not one the bot made.
NOT_OURS = "That button is not one I know. Nothing was changed."


async def tell(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
    user = (body.get("user") or {}).get("id") or body.get("user_id", "")
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get(
        "id"
    )
    if not channel:
        channel = body.get("channel_id", "")
    try:
        if channel and not str(channel).startswith("D"):
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            await client.chat_postMessage(channel=user, text=text)
    except SlackApiError as error:
        log.warning("could not tell %s: %s", user, error.response.get("error"))
