"""What every Web API method handler gets: the workspace state and the parsed request."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standin.errors import ApiError
from standin.store import MessageStore
from standin.surfaces import Surfaces
from standin.uploads import Uploads
from standin.workspace import Channel, Workspace

Body = dict[str, Any]
#: Items per page when the caller gives no `limit`, and the most Slack hands out in one page.
DEFAULT_PAGE = 100
MAX_PAGE = 1000


@dataclass
class SlackState:
    """Everything the Web API methods read and change."""

    workspace: Workspace
    messages: MessageStore
    surfaces: Surfaces
    issue_socket_url: Callable[[], str]
    uploads: Uploads = field(default_factory=Uploads)


@dataclass
class ApiRequest:
    """One call's arguments, merged from query string, form body and JSON body."""

    method: str
    params: dict[str, Any]

    def text(self, name: str, default: str = "") -> str:
        value = self.params.get(name)
        return default if value is None else str(value)

    def require(self, name: str, error: str = "invalid_arguments") -> str:
        value = self.text(name)
        if not value:
            raise ApiError(error)
        return value

    def flag(self, name: str) -> bool:
        """Booleans arrive as JSON true, or as "true"/"1" from form bodies."""
        return self.params.get(name) in (True, 1, "1", "true", "True")

    def structured(self, name: str, error: str) -> Any:
        """A JSON-valued argument (blocks, view), which form bodies send as a JSON string."""
        value = self.params.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ApiError(error) from exc
        return value


Handler = Callable[[SlackState, ApiRequest], Body]


def visible_channel(state: SlackState, ref: str) -> Channel:
    """The channel `ref` names, if the bot can see it; a user id means the bot's DM with them."""
    ws = state.workspace
    if ref in ws.users and ref[:1] in ("U", "W"):
        return ws.dm_with(ref)
    channel = ws.find_channel(ref)
    if channel is None or not ws.bot_sees(channel):
        raise ApiError("channel_not_found")
    return channel


def postable_channel(state: SlackState, ref: str) -> Channel:
    """A channel the bot may post in: visible, not archived, and the bot is a member."""
    channel = visible_channel(state, ref)
    if channel.archived:
        raise ApiError("is_archived")
    if state.workspace.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    return channel


def bot_message(workspace: Workspace, content: dict[str, Any]) -> dict[str, Any]:
    """A message as Slack stores it when the bot posts `content` (text, blocks, ...)."""
    return {
        "type": "message",
        "user": workspace.bot_user_id,
        "bot_id": workspace.bot_id,
        "app_id": workspace.app_id,
        "team": workspace.team_id,
        "bot_profile": {
            "id": workspace.bot_id,
            "app_id": workspace.app_id,
            "name": workspace.bot_name,
        },
        **content,
    }


def page(items: list[Any], req: ApiRequest) -> tuple[list[Any], Body]:
    """Slack's cursor pagination: a page of `items` and the `response_metadata` whose
    `next_cursor` ("" on the last page) asks for the next. Cursors are opaque base64 strings,
    here of an offset."""
    cursor = req.text("cursor")
    try:
        start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
    except (ValueError, IndexError) as exc:
        raise ApiError("invalid_cursor") from exc
    try:
        limit = min(int(req.text("limit") or DEFAULT_PAGE), MAX_PAGE)
    except ValueError as exc:
        raise ApiError("invalid_limit") from exc
    limit = limit if limit > 0 else DEFAULT_PAGE
    end = start + limit
    next_cursor = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(items) else ""
    return items[start:end], {"next_cursor": next_cursor}
