"""Slack's side of a conversation with the bot: people typing commands, clicking, submitting.

`SlackDriver` builds the requests Slack's servers send when a person uses the app (slash
commands, block_actions, view_submission, view_closed, Events API callbacks), signs them, and
delivers them over HTTP or Socket Mode. Each one carries a fresh trigger_id the stand-in will
honour for views.open for 3 seconds. High-level helpers read what the bot showed (messages,
modals, Home tabs) from the stand-in, so a test can say "Alice clicks Approve".
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode

from standin import payloads
from standin.blocks import find_element
from standin.inputs import STATELESS, state_values, value_fields
from standin.signing import sign, signed_headers
from standin.transport import Delivery, HttpTransport, Reply, SocketTransport, Transport
from standin.webapi import SlackStandIn

__all__ = ["DriverError", "Reply", "SlackDriver", "sign"]

FORM = "application/x-www-form-urlencoded"
Surface = dict[str, Any]


class DriverError(LookupError):
    """The test asked for something a person could not do: no such button, no open modal."""


class SlackDriver:
    """Acts as Slack's clients and servers do towards the bot under test."""

    def __init__(
        self,
        bot_url: str | None,
        signing_secret: str,
        standin: SlackStandIn,
        *,
        transport: Literal["http", "socket"] = "http",
        timeout: float = 3.0,
        verification_token: str = "standin-verification-token",
    ) -> None:
        self.standin = standin
        self.workspace = standin.workspace
        self.signing_secret = signing_secret
        self.token = verification_token
        self._event_ids = itertools.count(1)
        #: What the bot suggested for each external select, by (view id, action_id): Slack's
        #: client lets a person pick only those (or the menu's initial options).
        self.suggested: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.http = HttpTransport(bot_url or "", signing_secret, timeout)
        self.transport: Transport
        if transport == "socket":
            self.transport = SocketTransport(standin, timeout)
        elif bot_url:
            self.transport = self.http
        else:
            raise ValueError("the http transport needs the bot's request URL")

    # -- what people do ---------------------------------------------------------------------

    async def slash_command(
        self, user: str, command: str, text: str = "", channel: str | None = None
    ) -> Reply:
        """`user` types `/command text` in `channel` (default: their DM with the app)."""
        channel_id = self._channel_id(channel) if channel else self.workspace.dm_with(user).id
        fields = payloads.slash_command(
            self.workspace,
            token=self.token,
            command=command,
            text=text,
            user=user,
            channel=channel_id,
            response_url=self.standin.issue_response_url(channel_id, user),
            trigger_id=self.standin.issue_trigger(user),
        )
        body = urlencode(fields).encode()
        return await self.transport.send(
            Delivery("slash_commands", dict(fields), body, FORM, accepts_response_payload=True)
        )

    async def click(
        self,
        user: str,
        where: Surface | None,
        action_id: str,
        value: Any = None,
        *,
        inputs: Mapping[str, Any] | None = None,
    ) -> Reply:
        """`user` uses the element `action_id` in a message or view (None: wherever it is).

        Buttons send their own value; for menus, pickers and inputs `value` is what is chosen.
        `inputs` are values already entered elsewhere in the view, which Slack sends along.
        """
        surface = self._current(user, where, action_id)
        block, element = find_element(surface["blocks"], action_id) or ({}, {})
        entered = dict(inputs or {})
        if element.get("type") not in STATELESS and value is not None:
            entered[action_id] = value
        state = state_values(surface["blocks"], entered, require=False)
        return await self._send_action(user, surface, _action(block, element, value), state)

    async def submit_modal(
        self, user: str, values: Mapping[str, Any] | None = None, *, view: Surface | None = None
    ) -> Reply:
        """`user` fills the open modal's inputs (by action_id or block_id) and presses Submit.

        The modal then closes, updates, or shows errors according to the bot's answer.
        """
        current = self._modal(user, view)
        offered = _with_suggestions(current, self.suggested)
        submitted = {**current, "state": {"values": state_values(offered["blocks"], values or {})}}
        payload = payloads.view_submission(
            self.workspace,
            token=self.token,
            user=user,
            trigger_id=self.standin.issue_trigger(user),
            view=submitted,
        )
        reply = await self._interactive(payload, accepts_response_payload=True)
        if reply.ok:
            self._apply_response_action(user, current, reply.body)
        return reply

    async def suggest(
        self, user: str, action_id: str, typed: str = "", *, view: Surface | None = None
    ) -> list[dict[str, Any]]:
        """`user` types `typed` in the open modal's external select `action_id`: Slack asks
        the bot's options URL (block_suggestion) and shows the options it answers, which the
        person may then choose (`submit_modal` refuses others)."""
        current = self._modal(user, view)
        block, element = find_element(current["blocks"], action_id) or ({}, {})
        if not element.get("type", "").endswith("external_select"):
            raise DriverError(f"{action_id!r} is not an external select in {user}'s modal")
        if len(typed) < int(element.get("min_query_length", 3)):
            raise DriverError(f"Slack asks for {action_id!r}'s options only once enough is typed")
        payload = payloads.block_suggestion(
            self.workspace,
            token=self.token,
            user=user,
            view=current,
            block_id=block.get("block_id", ""),
            action_id=action_id,
            value=typed,
        )
        reply = await self._interactive(payload, accepts_response_payload=False)
        if not reply.ok or not isinstance(reply.body, dict):
            raise DriverError(f"the bot did not answer the options request: {reply.status}")
        options = list(reply.body.get("options") or [])
        for group in reply.body.get("option_groups") or []:
            options.extend(group.get("options") or [])
        self.suggested[(current["id"], action_id)] = options
        return options

    async def close_modal(self, user: str) -> Reply | None:
        """`user` presses Cancel; Slack tells the bot only if the view asked (notify_on_close)."""
        current = self._modal(user, None)
        cleared = bool(current.get("clear_on_close"))
        surfaces = self.standin.state.surfaces
        surfaces.clear(user) if cleared else surfaces.close(user, current["id"])
        if not current.get("notify_on_close"):
            return None
        payload = payloads.view_closed(
            self.workspace, token=self.token, user=user, view=current, cleared=cleared
        )
        return await self._interactive(payload, accepts_response_payload=False)

    async def send_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> Reply:
        """An Events API callback; pass `retry_num` to send it as Slack's retries look."""
        event_id = event_id or f"Ev{next(self._event_ids):08d}"
        payload = payloads.event_callback(
            self.workspace, token=self.token, event=event, event_id=event_id
        )
        body = json.dumps(payload).encode()
        delivery = Delivery(
            "events_api",
            payload,
            body,
            "application/json",
            retry_num=retry_num,
            retry_reason=retry_reason if retry_num is not None else None,
        )
        return await self.transport.send(delivery)

    async def open_home(self, user: str) -> Reply:
        """`user` opens the app's Home tab (app_home_opened)."""
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.workspace.dm_with(user).id,
            "tab": "home",
        }
        home = self.standin.home_view(user)
        if home is not None:
            event["view"] = home
        return await self.send_event(event)

    async def post_raw(
        self, body: bytes, content_type: str = FORM, headers: dict[str, str] | None = None
    ) -> Reply:
        """POST `body` to the bot with these headers only (default: correctly signed)."""
        chosen = headers if headers is not None else signed_headers(body, self.signing_secret)
        return await self.http.post(body, content_type, chosen)

    # -- what people see --------------------------------------------------------------------

    def open_modal_for(self, user: str) -> Surface | None:
        """The modal the bot opened (or pushed) for `user` that is showing now."""
        return self.standin.open_modal(user)

    # -- internals --------------------------------------------------------------------------

    def _channel_id(self, ref: str) -> str:
        channel = self.workspace.find_channel(ref)
        return channel.id if channel else ref

    def _modal(self, user: str, view: Surface | None) -> Surface:
        if view is not None:
            found = self.standin.state.surfaces.view(view["id"])
            if found is not None:
                return found[1]
        current = self.standin.open_modal(user)
        if current is None:
            raise DriverError(f"{user} has no modal open")
        return current

    def _current(self, user: str, where: Surface | None, action_id: str) -> Surface:
        """The freshest copy of the message or view, since Slack sends what is shown now."""
        candidates = [where] if where is not None else self._everything_shown(user)
        for candidate in candidates:
            fresh = self._refresh(user, candidate)
            if fresh is not None and find_element(fresh.get("blocks") or [], action_id):
                return fresh
        raise DriverError(f"no element with action_id {action_id!r} is shown to {user}")

    def _everything_shown(self, user: str) -> list[Surface]:
        shown: list[Surface | None] = [self.standin.open_modal(user), self.standin.home_view(user)]
        messages = [*self.standin.all_messages(), *self.standin.ephemerals(user)]
        newest_first = sorted(messages, key=lambda m: m["ts"], reverse=True)
        return [s for s in [*shown, *newest_first] if s is not None]

    def _refresh(self, user: str, surface: Surface) -> Surface | None:
        if "ts" not in surface:
            found = self.standin.state.surfaces.view(surface.get("id", ""))
            return found[1] if found else None
        channel, ts = surface.get("channel"), surface["ts"]
        # A chat.postMessage answer's "message" names no channel; its ts is unique enough.
        stored = (
            self.standin.message(channel, ts)
            if channel
            else next((m for m in self.standin.all_messages() if m["ts"] == ts), None)
        )
        if stored is not None:
            return stored
        ephemeral = [m for m in self.standin.ephemerals(user) if m["ts"] == ts]
        return {**ephemeral[-1], "ephemeral": True} if ephemeral else None

    async def _send_action(
        self, user: str, surface: Surface, action: dict[str, Any], state: dict[str, Any]
    ) -> Reply:
        trigger_id = self.standin.issue_trigger(user)
        ws, token = self.workspace, self.token
        if "ts" not in surface:
            view = {**surface, "state": {"values": state}}
            payload = payloads.block_actions_in_view(
                ws, token=token, user=user, trigger_id=trigger_id, action=action, view=view
            )
        else:
            channel, ephemeral = surface["channel"], bool(surface.get("ephemeral"))
            message = {k: v for k, v in surface.items() if k not in ("channel", "ephemeral")}
            payload = payloads.block_actions_in_message(
                ws,
                token=token,
                user=user,
                trigger_id=trigger_id,
                action=action,
                channel=channel,
                message=message,
                ephemeral=ephemeral,
                state=state,
                response_url=self.standin.issue_response_url(
                    channel, user, message["ts"], ephemeral
                ),
            )
        return await self._interactive(payload, accepts_response_payload=False)

    async def _interactive(self, payload: dict[str, Any], accepts_response_payload: bool) -> Reply:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        delivery = Delivery("interactive", payload, body, FORM, accepts_response_payload)
        return await self.transport.send(delivery)

    def _apply_response_action(self, user: str, view: Surface, answer: Any) -> None:
        """What Slack does with the bot's answer to a view_submission."""
        surfaces = self.standin.state.surfaces
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if action in (None, ""):
            surfaces.close(user, view["id"])
        elif action == "clear":
            surfaces.clear(user)
        elif action == "update":
            surfaces.update(answer["view"], view["id"], "", "")
        elif action == "push":
            surfaces.push(user, answer["view"])
        elif action != "errors":
            raise DriverError(f"Slack does not know response_action {action!r}")


def _with_suggestions(view: Surface, suggested: Mapping[tuple[str, str], list[Any]]) -> Surface:
    """The view with each external select offering what the bot suggested for it (and its
    initial options), so that choosing anything else is refused as Slack's client would."""
    blocks = json.loads(json.dumps(view.get("blocks") or []))
    for block in blocks:
        element = block.get("element") or {}
        if element.get("type", "").endswith("external_select"):
            initial = element.get("initial_options") or (
                [element["initial_option"]] if element.get("initial_option") else []
            )
            element["options"] = [*initial, *suggested.get((view["id"], element["action_id"]), [])]
    return {**view, "blocks": blocks}


def _action(block: dict[str, Any], element: dict[str, Any], value: Any) -> dict[str, Any]:
    """One entry of block_actions' `actions`: which element, and what it now says."""
    action = {
        "type": element.get("type"),
        "action_id": element.get("action_id"),
        "block_id": block.get("block_id", ""),
        "action_ts": payloads.action_ts(),
    }
    if element.get("type") == "button":
        action["text"] = element.get("text")
        if value is not None or "value" in element:
            action["value"] = value if value is not None else element["value"]
    else:
        action.update(value_fields(element, value))
    return action
