"""Modals and App Home: trigger_ids, each user's stack of open modals, and published Home tabs.

Slack only opens a modal for a fresh trigger_id (about 3 s, single use) from an interaction, and
keeps up to three modals stacked per user; the stand-in enforces both so tests catch slow or
misplaced views.open calls.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass
from typing import Any

from standin.blocks import json_copy, with_block_ids
from standin.errors import ApiError
from standin.workspace import Workspace

View = dict[str, Any]
MAX_STACK = 3


@dataclass
class Trigger:
    user: str
    issued_at: float
    used: bool = False


class Surfaces:
    """Triggers, modal stacks and Home views per user."""

    def __init__(self, workspace: Workspace, trigger_ttl: float = 3.0) -> None:
        self.workspace = workspace
        self.trigger_ttl = trigger_ttl
        self._triggers: dict[str, Trigger] = {}
        self._trigger_seq = itertools.count(1)
        self._view_seq = itertools.count(1)
        self.stacks: dict[str, list[View]] = {}
        self.homes: dict[str, View] = {}

    # -- triggers ---------------------------------------------------------------------------

    def issue_trigger(self, user: str) -> str:
        """A trigger_id in Slack's `number.number.hex` shape, good for `trigger_ttl` seconds."""
        trigger_id = f"{next(self._trigger_seq)}.{int(time.time())}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = Trigger(user, time.monotonic())
        return trigger_id

    def expire_triggers(self) -> None:
        """Age every trigger past its lifetime, to test expiry without sleeping 3 s."""
        for trigger in self._triggers.values():
            trigger.issued_at -= self.trigger_ttl + 1

    def redeem(self, trigger_id: str) -> str:
        """The user the trigger belongs to; each trigger opens one view."""
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if time.monotonic() - trigger.issued_at > self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        trigger.used = True
        return trigger.user

    # -- views ------------------------------------------------------------------------------

    # With `owned`, the caller hands over a view parsed for this call alone and only
    # serialises what comes back (the Web API does): neither needs copying. This is most of
    # what a form costs the stand-in, which shares the machine with the bot in benchmarks.

    def open(self, user: str, view: View, *, owned: bool = False) -> View:
        stored = self._build(view, previous=None, owned=owned)
        self.stacks[user] = [stored]
        return stored if owned else json_copy(stored)

    def push(self, user: str, view: View, *, owned: bool = False) -> View:
        stack = self.stacks.setdefault(user, [])
        if len(stack) >= MAX_STACK:
            raise ApiError("push_limit_reached")
        previous = stack[-1] if stack else None
        stored = self._build(view, previous=previous, owned=owned)
        stack.append(stored)
        return stored if owned else json_copy(stored)

    def publish(self, user: str, view: View, *, owned: bool = False) -> View:
        old = self.homes.get(user)
        stored = self._build(view, previous=None, view_id=old["id"] if old else None, owned=owned)
        self.homes[user] = stored
        return stored if owned else json_copy(stored)

    def update(
        self, view: View, view_id: str, external_id: str, hash_: str, *, owned: bool = False
    ) -> View:
        user, old = self.find(view_id, external_id)
        if hash_ and hash_ != old["hash"]:
            raise ApiError("hash_conflict")
        stored = self._build(view, previous=None, view_id=old["id"], owned=owned)
        stored["previous_view_id"] = old["previous_view_id"]
        stored["root_view_id"] = old["root_view_id"]
        self._replace(user, old, stored)
        return stored if owned else json_copy(stored)

    def find(self, view_id: str, external_id: str) -> tuple[str, View]:
        """The stored view with this id (or external_id) and whose it is, else `not_found`."""
        for user, view in self._all_views():
            if (view_id and view["id"] == view_id) or (
                external_id and view.get("external_id") == external_id
            ):
                return user, view
        raise ApiError("not_found")

    def _all_views(self) -> list[tuple[str, View]]:
        views = [(user, v) for user, stack in self.stacks.items() for v in stack]
        return views + list(self.homes.items())

    def _replace(self, user: str, old: View, new: View) -> None:
        if self.homes.get(user) is old:
            self.homes[user] = new
            return
        stack = self.stacks[user]
        stack[stack.index(old)] = new

    def close(self, user: str, view_id: str | None = None) -> None:
        """Close the top modal (or the one named), as the user's Cancel or an empty ack does."""
        stack = self.stacks.get(user, [])
        if not stack:
            return
        index = next((i for i, v in enumerate(stack) if v["id"] == view_id), len(stack) - 1)
        del stack[index:]

    def clear(self, user: str) -> None:
        self.stacks[user] = []

    def view(self, view_id: str) -> tuple[str, View] | None:
        found = next(((u, v) for u, v in self._all_views() if v["id"] == view_id), None)
        return (found[0], json_copy(found[1])) if found else None

    def _build(
        self, view: View, previous: View | None, view_id: str | None = None, owned: bool = False
    ) -> View:
        """The view object Slack stores and echoes back, with its id, hash and empty state."""
        ws = self.workspace
        new_id = view_id or f"V{next(self._view_seq):08d}"
        return {
            "id": new_id,
            "team_id": ws.team_id,
            "type": view.get("type"),
            "blocks": with_block_ids(view.get("blocks") or [], copy=not owned),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous["id"] if previous else None,
            "root_view_id": previous["root_view_id"] if previous else new_id,
            "app_id": ws.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": ws.team_id,
            "bot_id": ws.bot_id,
        }
