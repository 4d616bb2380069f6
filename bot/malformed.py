"""Requests that are signed but not shaped as Slack sends them: no user, no action, no view.

Bolt would hand them to listeners (or to its own argument injection) and fail there with a
KeyError or IndexError, answering 500 or nothing at all. This middleware runs after Bolt has
verified the signature, so forgeries are still refused with 401, and answers 400 instead."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

#: Interactive payload types whose listeners need a view.
NEEDS_VIEW = {"view_submission", "view_closed"}
#: Events whose listeners act for the event's user (a string: the user's ID).
USER_EVENTS = {"app_home_opened"}


def problem(body: Any) -> str | None:
    """What is missing from `body` for our listeners to handle it, or None if nothing is."""
    if not isinstance(body, dict):
        return "the body is not an object"
    if "command" in body:
        if not isinstance(body.get("user_id"), str):
            return "a command without user_id"
        # Every command Slack sends has one; the forms /change opens need it.
        return None if isinstance(body.get("trigger_id"), str) else "a command without trigger_id"
    kind = body.get("type")
    if kind is not None and not isinstance(kind, str):
        return "a payload whose type is not a string"
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "an event_callback whose event is not an object with a type"
        if event["type"] in USER_EVENTS and not isinstance(event.get("user"), str):
            return f"a {event['type']} event without a user"
        return None
    if kind in (None, "url_verification", "app_rate_limited"):
        return None  # Events API envelopes; Bolt answers those it does not handle itself
    user = body.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return f"a {kind} payload without a user"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions without actions"
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "an action without an action_id"
    if kind in NEEDS_VIEW and not isinstance(body.get("view"), dict):
        return f"a {kind} payload without a view"
    return None


class RefuseMalformed(AsyncMiddleware):
    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        why = problem(req.body)
        if why is not None:
            log.info("refused a malformed request: %s", why)
            return BoltResponse(status=400, body="malformed request")
        return await next()
