"""chat.* methods: posting, editing, deleting and linking to messages, and ephemeral messages."""

from __future__ import annotations

from typing import Any

from standin.api.base import (
    ApiRequest,
    Body,
    Handler,
    SlackState,
    bot_message,
    postable_channel,
    visible_channel,
)
from standin.blocks import with_block_ids
from standin.errors import ApiError
from standin.store import Ephemeral

MAX_BLOCKS = 50  # slack_sdk does not check this one; Slack does
MAX_TEXT = 40_000


def _content(req: ApiRequest, *, partial: bool) -> dict[str, Any]:
    """text/blocks/attachments as Slack stores them; chat.update keeps what it isn't sent."""
    content: dict[str, Any] = {}
    if "text" in req.params or not partial:
        content["text"] = req.text("text")
    if len(content.get("text", "")) > MAX_TEXT:
        raise ApiError("msg_too_long")
    blocks = req.structured("blocks", "invalid_blocks_format")
    if blocks is not None:
        content["blocks"] = _checked_blocks(blocks)
    attachments = req.structured("attachments", "invalid_attachments")
    if attachments is not None:
        content["attachments"] = attachments
    metadata = req.structured("metadata", "invalid_metadata_format")
    if metadata is not None:
        content["metadata"] = metadata
    return content


def _checked_blocks(blocks: Any) -> list[dict[str, Any]]:
    if not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format")
    if len(blocks) > MAX_BLOCKS or not all(isinstance(b, dict) and "type" in b for b in blocks):
        raise ApiError("invalid_blocks", errors=[f"must be at most {MAX_BLOCKS} typed blocks"])
    return with_block_ids(blocks)


def post_message(state: SlackState, req: ApiRequest) -> Body:
    channel = postable_channel(state, req.require("channel", "channel_not_found"))
    content = _content(req, partial=False)
    if not (content["text"] or content.get("blocks") or content.get("attachments")):
        raise ApiError("no_text")
    message = bot_message(state.workspace, content)
    thread_ts = req.text("thread_ts")
    if thread_ts:
        message["thread_ts"] = thread_ts
        if req.flag("reply_broadcast"):
            message["subtype"] = "thread_broadcast"
    stored = state.messages.post(channel.id, message)
    return {"ok": True, "channel": channel.id, "ts": stored["ts"], "message": stored}


def update(state: SlackState, req: ApiRequest) -> Body:
    channel = visible_channel(state, req.require("channel", "channel_not_found"))
    ts = req.require("ts", "message_not_found")
    changes = _content(req, partial=True)
    bot = state.workspace.bot_user_id
    message = state.messages.update(channel.id, ts, changes, editor=bot)
    return {
        "ok": True,
        "channel": channel.id,
        "ts": ts,
        "text": message["text"],
        "message": message,
    }


def delete(state: SlackState, req: ApiRequest) -> Body:
    channel = visible_channel(state, req.require("channel", "channel_not_found"))
    ts = req.require("ts", "message_not_found")
    state.messages.delete(channel.id, ts, deleter=state.workspace.bot_user_id)
    return {"ok": True, "channel": channel.id, "ts": ts}


def post_ephemeral(state: SlackState, req: ApiRequest) -> Body:
    channel = postable_channel(state, req.require("channel", "channel_not_found"))
    user = req.require("user", "user_not_found")
    if user not in state.workspace.users:
        raise ApiError("user_not_found")
    if user not in channel.members:
        raise ApiError("user_not_in_channel")
    content = _content(req, partial=False)
    if not (content["text"] or content.get("blocks") or content.get("attachments")):
        raise ApiError("no_text")
    message = bot_message(state.workspace, content)
    message["ts"] = state.messages.next_ts()
    if req.text("thread_ts"):
        message["thread_ts"] = req.text("thread_ts")
    state.messages.ephemerals.append(Ephemeral(channel.id, user, message))
    return {"ok": True, "message_ts": message["ts"]}


def get_permalink(state: SlackState, req: ApiRequest) -> Body:
    channel = visible_channel(state, req.require("channel", "channel_not_found"))
    ts = req.require("message_ts", "message_not_found")
    message = state.messages.get(channel.id, ts)
    if message is None:
        raise ApiError("message_not_found")
    archive = f"https://{state.workspace.team_domain}.slack.com/archives/{channel.id}"
    link = f"{archive}/p{ts.replace('.', '')}"
    thread_ts = message.get("thread_ts")
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel.id}"
    return {"ok": True, "channel": channel.id, "permalink": link}


HANDLERS: dict[str, Handler] = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.delete": delete,
    "chat.postEphemeral": post_ephemeral,
    "chat.getPermalink": get_permalink,
}
