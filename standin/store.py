"""Slack's message history: what was posted where, edited, threaded, deleted or shown ephemerally.

Tests read it back the way a person reads a channel: the current text of each message, replies in
order under their root, edits applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from standin.blocks import json_copy
from standin.errors import ApiError

Message = dict[str, Any]


class TsClock:
    """Issues Slack message timestamps: "seconds.micros" strings, unique and increasing."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last_micros = 0

    def next(self) -> str:
        # Two posts in the same microsecond must still get distinct, ordered ts values.
        micros = max(int(self._clock() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass
class Ephemeral:
    """A message only `user` sees; Slack keeps no history of these, the stand-in does."""

    channel: str
    user: str
    message: Message


class MessageStore:
    """Messages per channel keyed by ts, in posting order."""

    def __init__(self, ts_clock: TsClock) -> None:
        self._ts = ts_clock
        self._channels: dict[str, dict[str, Message]] = {}
        self._deleted: set[tuple[str, str]] = set()
        self.ephemerals: list[Ephemeral] = []

    def next_ts(self) -> str:
        return self._ts.next()

    def post(self, channel: str, message: Message) -> Message:
        ts = self._ts.next()
        stored = {**json_copy(message), "ts": ts}
        self._channels.setdefault(channel, {})[ts] = stored
        thread_ts = stored.get("thread_ts")
        if thread_ts:
            self._note_reply(channel, thread_ts, stored)
        return json_copy(stored)

    def seed(self, channel: str, ts: str, message: Message) -> None:
        """A message posted before the stand-in started, at the `ts` it was given then (a
        benchmark's database of changes whose cards are already in Slack)."""
        self._channels.setdefault(channel, {})[ts] = {**json_copy(message), "ts": ts}

    def _note_reply(self, channel: str, thread_ts: str, reply: Message) -> None:
        """Slack keeps reply counts and the latest reply on a thread's root message."""
        root = self._channels[channel].get(thread_ts)
        if root is None:
            return
        root["thread_ts"] = thread_ts
        root["reply_count"] = root.get("reply_count", 0) + 1
        root["latest_reply"] = reply["ts"]
        author = reply.get("user", "")
        root["reply_users"] = sorted({*root.get("reply_users", []), author})
        reply["parent_user_id"] = root.get("user", "")

    def get(self, channel: str, ts: str) -> Message | None:
        if (channel, ts) in self._deleted:
            return None
        message = self._channels.get(channel, {}).get(ts)
        return json_copy(message) if message is not None else None

    def update(self, channel: str, ts: str, changes: Message, editor: str) -> Message:
        message = self._channels.get(channel, {}).get(ts)
        if message is None or (channel, ts) in self._deleted:
            raise ApiError("message_not_found")
        if message.get("user") != editor:
            raise ApiError("cant_update_message")
        message.update(json_copy(changes))
        message["edited"] = {"user": editor, "ts": self._ts.next()}
        return json_copy(message)

    def delete(self, channel: str, ts: str, deleter: str) -> None:
        message = self._channels.get(channel, {}).get(ts)
        if message is None or (channel, ts) in self._deleted:
            raise ApiError("message_not_found")
        if message.get("user") != deleter:
            raise ApiError("cant_delete_message")
        self._deleted.add((channel, ts))

    def channel_ids(self) -> list[str]:
        return list(self._channels)

    def top_level(self, channel: str) -> list[Message]:
        """Messages as the channel shows them: roots and broadcasts, not replies."""
        return [
            {**m, "channel": channel}
            for m in self._live(channel)
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The root then its replies, oldest first; empty if the root is unknown or deleted."""
        root = self.get(channel, ts)
        if root is None:
            return []
        replies = [m for m in self._live(channel) if m.get("thread_ts") == ts and m["ts"] != ts]
        return [{**m, "channel": channel} for m in [root, *replies]]

    def _live(self, channel: str) -> list[Message]:
        messages = self._channels.get(channel, {})
        return [json_copy(m) for ts, m in messages.items() if (channel, ts) not in self._deleted]
