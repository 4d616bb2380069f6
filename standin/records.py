"""What the bot did to Slack, read back for assertions: calls, messages, threads, views.

Slack's own UI is how a person checks a bot's work; these helpers are how a test does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from standin.api.base import SlackState
from standin.blocks import json_copy

Message = dict[str, Any]


@dataclass
class Call:
    """One Web API request as the stand-in received and answered it."""

    method: str
    params: dict[str, Any]
    token: str | None
    at: float
    http_method: str = "POST"
    status: int = 0
    response: dict[str, Any] | None = None
    fault: str | None = None
    #: The client's address and port: calls over one kept-alive connection share it.
    peer: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.response is None else self.response.get("error")


class Records:
    """Read-only views over the stand-in's state; mixed into SlackStandIn."""

    state: SlackState
    calls: list[Call]

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def _channel_id(self, ref: str) -> str:
        channel = self.state.workspace.find_channel(ref)
        return channel.id if channel else ref

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages in a channel (id or name), oldest first, edits applied."""
        return self.state.messages.top_level(self._channel_id(channel))

    def message(self, channel: str, ts: str) -> Message | None:
        found = self.state.messages.get(self._channel_id(channel), ts)
        return {**found, "channel": self._channel_id(channel)} if found else None

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The root message then its replies, oldest first, edits applied, deletions gone."""
        return self.state.messages.thread(self._channel_id(channel), ts)

    def all_messages(self) -> list[Message]:
        """Every live message in every channel, replies included, in posting order."""
        store = self.state.messages
        found = [
            m
            for channel in store.channel_ids()
            for root in store.top_level(channel)
            for m in (store.thread(channel, root["ts"]) if root.get("reply_count") else [root])
        ]
        return sorted(found, key=lambda m: m["ts"])

    def dms(self, user: str) -> list[Message]:
        """Messages in the bot's DM with `user`."""
        return self.state.messages.top_level(self.state.workspace.dm_with(user).id)

    def ephemerals(self, user: str, channel: str | None = None) -> list[Message]:
        """Ephemeral messages shown to `user`, optionally only those in `channel`."""
        wanted = self._channel_id(channel) if channel else None
        return [
            {**e.message, "channel": e.channel}
            for e in self.state.messages.ephemerals
            if e.user == user and wanted in (None, e.channel)
        ]

    def home_view(self, user: str) -> dict[str, Any] | None:
        """The App Home view last published for `user`."""
        view = self.state.surfaces.homes.get(user)
        return json_copy(view) if view else None

    def modals(self, user: str) -> list[dict[str, Any]]:
        """The user's open modals, bottom of the stack first."""
        return json_copy(self.state.surfaces.stacks.get(user, []))

    def open_modal(self, user: str) -> dict[str, Any] | None:
        """The modal the user is looking at now (top of the stack)."""
        stack = self.modals(user)
        return stack[-1] if stack else None

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 2.0) -> Any:
        """Poll until `condition()` is truthy, since bots often call Slack after acking."""
        deadline = time.monotonic() + timeout
        while not (result := condition()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.01)
        return result

    def wait_for_sync(self, condition: Callable[[], Any], timeout: float = 2.0) -> Any:
        """`wait_for` for synchronous tests (stand-in running in a StandInThread)."""
        deadline = time.monotonic() + timeout
        while not (result := condition()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(0.01)
        return result

    async def wait_for_calls(self, method: str, count: int = 1, timeout: float = 2.0) -> list[Call]:
        """The calls to `method` once there are at least `count` of them."""
        await self.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
        return self.calls_to(method)
