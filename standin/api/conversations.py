"""conversations.* methods: DMs, joining channels, channel info, members, history, threads."""

from __future__ import annotations

from collections.abc import Callable

from standin.api.base import (
    DEFAULT_PAGE,
    ApiRequest,
    Body,
    Handler,
    SlackState,
    page,
    visible_channel,
)
from standin.errors import ApiError
from standin.workspace import Channel

#: conversations.list's `types`, and whether the channel is one of them.
TYPES: dict[str, Callable[[Channel], bool]] = {
    "public_channel": lambda c: not c.private and not c.is_dm,
    "private_channel": lambda c: c.private and not c.is_dm,
    "im": lambda c: c.is_dm,
}


def open_dm(state: SlackState, req: ApiRequest) -> Body:
    """Only one-to-one DMs: the bot's conversation with a single user."""
    if req.text("channel"):
        channel = visible_channel(state, req.text("channel"))
        return {"ok": True, "channel": {"id": channel.id}}
    users = [u for u in req.require("users", "users_list_not_supplied").split(",") if u]
    if len(users) != 1:
        raise ApiError("not_supported", detail="the stand-in opens one-to-one DMs only")
    if users[0] not in state.workspace.users:
        raise ApiError("user_not_found")
    channel = state.workspace.dm_with(users[0])
    bot = state.workspace.bot_user_id
    body = channel.to_api(bot) if req.flag("return_im") else {"id": channel.id}
    return {"ok": True, "channel": body}


def join(state: SlackState, req: ApiRequest) -> Body:
    channel = visible_channel(state, req.require("channel", "channel_not_found"))
    bot = state.workspace.bot_user_id
    if channel.private or channel.is_dm:
        raise ApiError("method_not_supported_for_channel_type")
    if channel.archived:
        raise ApiError("is_archived")
    if bot in channel.members:
        warning = "already_in_channel"
        return {
            "ok": True,
            "channel": channel.to_api(bot),
            "warning": warning,
            "response_metadata": {"warnings": [warning]},
        }
    channel.members.append(bot)
    return {"ok": True, "channel": channel.to_api(bot)}


def info(state: SlackState, req: ApiRequest) -> Body:
    channel = visible_channel(state, req.require("channel", "channel_not_found"))
    return {"ok": True, "channel": channel.to_api(state.workspace.bot_user_id)}


def members(state: SlackState, req: ApiRequest) -> Body:
    channel = visible_channel(state, req.require("channel", "channel_not_found"))
    found, metadata = page(channel.members, req)
    return {"ok": True, "members": found, "response_metadata": metadata}


def list_(state: SlackState, req: ApiRequest) -> Body:
    """The channels the bot can see, of the `types` asked for (public channels by default):
    private ones only where the bot is a member, archived ones unless `exclude_archived`."""
    asked = [t for t in (req.text("types") or "public_channel").split(",") if t]
    if any(t not in TYPES for t in asked):
        raise ApiError("invalid_types")
    ws = state.workspace
    channels = [
        c.to_api(ws.bot_user_id)
        for c in ws.channels.values()
        if ws.bot_sees(c)
        and any(TYPES[t](c) for t in asked)
        and not (c.archived and req.flag("exclude_archived"))
    ]
    found, metadata = page(channels, req)
    return {"ok": True, "channels": found, "response_metadata": metadata}


def history(state: SlackState, req: ApiRequest) -> Body:
    channel = visible_channel(state, req.require("channel", "channel_not_found"))
    if state.workspace.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    newest_first = list(reversed(state.messages.top_level(channel.id)))
    limit = int(req.text("limit") or DEFAULT_PAGE)
    messages = [{k: v for k, v in m.items() if k != "channel"} for m in newest_first[:limit]]
    return {"ok": True, "messages": messages, "has_more": len(newest_first) > limit}


def replies(state: SlackState, req: ApiRequest) -> Body:
    channel = visible_channel(state, req.require("channel", "channel_not_found"))
    thread = state.messages.thread(channel.id, req.require("ts", "thread_not_found"))
    if not thread:
        raise ApiError("thread_not_found")
    messages = [{k: v for k, v in m.items() if k != "channel"} for m in thread]
    return {"ok": True, "messages": messages, "has_more": False}


HANDLERS: dict[str, Handler] = {
    "conversations.open": open_dm,
    "conversations.join": join,
    "conversations.info": info,
    "conversations.list": list_,
    "conversations.members": members,
    "conversations.history": history,
    "conversations.replies": replies,
}
