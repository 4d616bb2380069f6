"""The request bodies Slack sends to a bot: slash commands, interactions, Events API callbacks.

Shapes follow the recorded payloads in ../shared/slack/payloads (field names, nesting and, for
slash commands, field order); values come from the stand-in's workspace.
"""

from __future__ import annotations

import time
from typing import Any

from standin.workspace import Workspace

Payload = dict[str, Any]


def user_ref(ws: Workspace, user: str) -> Payload:
    name = ws.user_name(user)
    return {"id": user, "username": name, "name": name, "team_id": ws.team_id}


def team_ref(ws: Workspace) -> Payload:
    return {"id": ws.team_id, "domain": ws.team_domain}


def slash_command(
    ws: Workspace,
    *,
    token: str,
    command: str,
    text: str,
    user: str,
    channel: str,
    response_url: str,
    trigger_id: str,
) -> list[tuple[str, str]]:
    """Form fields in the order Slack sends them (bolt-js's recorded request)."""
    return [
        ("token", token),
        ("team_id", ws.team_id),
        ("team_domain", ws.team_domain),
        ("channel_id", channel),
        ("channel_name", ws.channel_name(channel)),
        ("user_id", user),
        ("user_name", ws.user_name(user)),
        ("command", command),
        ("text", text),
        ("api_app_id", ws.app_id),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ]


def _interaction(ws: Workspace, kind: str, token: str, user: str, trigger_id: str) -> Payload:
    return {
        "type": kind,
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": token,
        "trigger_id": trigger_id,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
    }


def block_actions_in_message(
    ws: Workspace,
    *,
    token: str,
    user: str,
    trigger_id: str,
    action: Payload,
    channel: str,
    message: Payload,
    ephemeral: bool,
    response_url: str,
    state: Payload,
) -> Payload:
    """A click in a message; ephemeral messages are not echoed back, as in Slack."""
    payload = _interaction(ws, "block_actions", token, user, trigger_id)
    payload["container"] = {
        "type": "message",
        "message_ts": message["ts"],
        "channel_id": channel,
        "is_ephemeral": ephemeral,
    }
    if message.get("thread_ts"):
        payload["container"]["thread_ts"] = message["thread_ts"]
    payload["channel"] = {"id": channel, "name": ws.channel_name(channel)}
    if not ephemeral:
        payload["message"] = message
    payload["state"] = {"values": state}
    payload["response_url"] = response_url
    payload["actions"] = [action]
    return payload


def block_actions_in_view(
    ws: Workspace, *, token: str, user: str, trigger_id: str, action: Payload, view: Payload
) -> Payload:
    """A click in a modal or the App Home; the view carries its current input state."""
    payload = _interaction(ws, "block_actions", token, user, trigger_id)
    payload["container"] = {"type": "view", "view_id": view["id"]}
    payload["view"] = view
    payload["actions"] = [action]
    return payload


def view_submission(
    ws: Workspace, *, token: str, user: str, trigger_id: str, view: Payload
) -> Payload:
    payload = _interaction(ws, "view_submission", token, user, trigger_id)
    payload["view"] = view
    payload["response_urls"] = []
    return payload


def block_suggestion(
    ws: Workspace,
    *,
    token: str,
    user: str,
    view: Payload,
    block_id: str,
    action_id: str,
    value: str,
) -> Payload:
    """A person typing in an external select of a modal: Slack asks the app's options load
    URL what to offer for `value` (no trigger_id; the app answers with options, at once)."""
    payload = _interaction(ws, "block_suggestion", token, user, "")
    del payload["trigger_id"]
    payload["container"] = {"type": "view", "view_id": view["id"]}
    payload["action_id"] = action_id
    payload["block_id"] = block_id
    payload["value"] = value
    payload["view"] = view
    return payload


def view_closed(ws: Workspace, *, token: str, user: str, view: Payload, cleared: bool) -> Payload:
    payload = _interaction(ws, "view_closed", token, user, "")
    del payload["trigger_id"]
    payload["view"] = view
    payload["is_cleared"] = cleared
    return payload


def event_callback(ws: Workspace, *, token: str, event: Payload, event_id: str) -> Payload:
    now = time.time()
    return {
        "token": token,
        "team_id": ws.team_id,
        "api_app_id": ws.app_id,
        "event": {"event_ts": f"{now:.6f}", **event},
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
    }


def action_ts() -> str:
    return f"{time.time():.6f}"
