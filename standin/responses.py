"""Slack's `response_url` webhooks, which commands and message actions hand to the bot.

Bolt's `respond()` posts JSON there to reply ephemerally, in the channel, or to replace or delete
the message a button was clicked in. Slack allows 5 uses within 30 minutes per URL.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from standin.api.base import SlackState, bot_message
from standin.errors import ApiError
from standin.store import Ephemeral

MAX_USES = 5
LIFETIME = 30 * 60


@dataclass
class ResponseUrl:
    """Where a response_url points: the channel, the user, and the message clicked (if any)."""

    channel: str
    user: str
    message_ts: str | None = None
    ephemeral: bool = False
    issued_at: float = field(default_factory=time.monotonic)
    posts: list[dict[str, Any]] = field(default_factory=list)


class ResponseUrls:
    """Issues response_urls and applies what the bot posts to them."""

    def __init__(self, state: SlackState) -> None:
        self.state = state
        self.base = ""  # set once the server knows its port
        self.urls: dict[str, ResponseUrl] = {}

    def issue(self, channel: str, user: str, message_ts: str | None, ephemeral: bool) -> str:
        kind = "actions" if message_ts else "commands"
        key = f"{kind}/{self.state.workspace.team_id}/{len(self.urls) + 1}/{secrets.token_hex(12)}"
        self.urls[key] = ResponseUrl(channel, user, message_ts, ephemeral)
        return f"{self.base}{key}"

    async def handle(self, request: web.Request) -> web.Response:
        target = self.urls.get(request.match_info["key"])
        if target is None or time.monotonic() - target.issued_at > LIFETIME:
            return web.Response(status=404, text="expired_url")
        if len(target.posts) >= MAX_USES:
            return web.Response(status=404, text="used_url")
        body = await request.json()
        target.posts.append(body)
        try:
            self._apply(target, body)
        except ApiError as error:
            return web.Response(status=404, text=error.error)
        return web.json_response({"ok": True})

    def _apply(self, target: ResponseUrl, body: dict[str, Any]) -> None:
        if target.message_ts and (body.get("delete_original") or body.get("replace_original")):
            self._change_original(target, body)
            return
        messages = self.state.messages
        message = bot_message(self.state.workspace, _content(body))
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        if body.get("response_type") == "in_channel":
            messages.post(target.channel, message)
        else:
            message["ts"] = messages.next_ts()
            messages.ephemerals.append(Ephemeral(target.channel, target.user, message))

    def _change_original(self, target: ResponseUrl, body: dict[str, Any]) -> None:
        messages = self.state.messages
        ts = target.message_ts or ""
        if target.ephemeral:
            kept = [e for e in messages.ephemerals if e.message["ts"] != ts]
            if body.get("replace_original"):
                replaced = [e for e in messages.ephemerals if e.message["ts"] == ts]
                for old in replaced:
                    old.message.update(_content(body))
                kept += replaced
            messages.ephemerals[:] = sorted(kept, key=lambda e: e.message["ts"])
            return
        bot = self.state.workspace.bot_user_id
        if body.get("delete_original"):
            messages.delete(target.channel, ts, deleter=bot)
        else:
            messages.update(target.channel, ts, _content(body), editor=bot)


def _content(body: dict[str, Any]) -> dict[str, Any]:
    keys = ("text", "blocks", "attachments")
    return {key: body[key] for key in keys if key in body}
