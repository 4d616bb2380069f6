"""Telling one person something only they should see: an ephemeral where they clicked,
otherwise a direct message. Refusals change nothing and are never posted to the thread."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from workflows.errors import ChangeError

log = logging.getLogger(__name__)

#: The answer to a button whose value or ID is not one the bot made.
NOT_OURS = "That button is not one I know. Nothing was changed."


@dataclass(frozen=True, slots=True)
class Where:
    """Whom to tell, and where they acted: all a reply needs of a request's body, so that
    work done after the acknowledgement need not keep the body."""

    user: str
    channel: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Where:
        user = (body.get("user") or {}).get("id") or body.get("user_id", "")
        channel = (body.get("container") or {}).get("channel_id") or (
            body.get("channel") or {}
        ).get("id")
        return cls(str(user), str(channel or body.get("channel_id", "")))


async def tell(client: AsyncWebClient, to: dict[str, Any] | Where, text: str) -> None:
    """Tell the person behind `to` (a request's body, or where it came from) `text`."""
    where = to if isinstance(to, Where) else Where.of(to)
    user, channel = where.user, where.channel
    if not user:  # nobody to tell: a body without a person is refused before it gets here
        log.warning("nobody to tell: %s", text)
        return
    try:
        if channel and not channel.startswith("D"):
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            await client.chat_postMessage(channel=user, text=text)
    except SlackApiError as error:
        log.warning("could not tell %s: %s", user, error.response.get("error"))


async def tell_failure(
    client: AsyncWebClient, to: dict[str, Any] | Where, error: Exception
) -> None:
    """What went wrong, told as before the acknowledgement as after it: a known refusal in its
    own sentence; anything else logged with a reference the person is given to quote."""
    if isinstance(error, ChangeError):
        await tell(client, to, str(error))
        return
    reference = f"{random.getrandbits(32):08x}"
    log.error("unexpected error (reference %s)", reference, exc_info=error)
    await tell(
        client,
        to,
        f"Something went wrong on my side, and it may not have been done. Quote reference "
        f"{reference} to whoever runs changebot.",
    )
