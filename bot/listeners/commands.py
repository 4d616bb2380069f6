"""`/change`: new, list, show, calendar, help (and anything else gets the help)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import ids, queries
from bot.listeners.calendar import calendar_response
from bot.listeners.catalog import propose_command
from bot.services import Services
from bot.text import cut, escape
from bot.views import forms, messages
from bot.views import metrics as metrics_view
from bot.views_open import open_view
from workflows import emergency
from workflows.errors import ChangeError, NotFound
from workflows.metrics import Trend, last_days
from workflows.model import Actor, parse_ref
from workflows.standing import standing

log = logging.getLogger(__name__)

LISTS = {"mine", "open", "awaiting-me"}


def register(app: AsyncApp) -> None:
    app.command(ids.COMMAND)(change_command)


async def change_command(ack: AsyncAck, command: dict[str, Any], services: Services) -> None:
    verb, _, rest = (command.get("text") or "").strip().partition(" ")
    verb, rest = verb.lower(), rest.strip()
    if verb in ("", "new"):
        await ack()
        await open_request_modal(command["trigger_id"], services, command.get("channel_id", ""))
    elif verb == "emergency":
        await ack(**await declare(services, command, rest))
    elif verb == "list":
        await ack(**await list_response(services, command["user_id"], rest.lower() or "mine"))
    elif verb == "show":
        await ack(**await show_response(services, rest))
    elif verb == "metrics":
        await ack(**await metrics_response(services, command["user_id"], rest))
    elif verb == "calendar":
        await ack(**await calendar_response(services, command["user_id"], rest))
    elif verb == ids.PROPOSE_VERB:
        await propose_command(ack, command, services, rest)
    else:
        unknown = "" if verb == "help" else verb
        await ack(response_type="ephemeral", **messages.help_message(unknown=unknown))


async def declare(services: Services, command: dict[str, Any], text: str) -> dict[str, Any]:
    """`/change emergency <what and why>`: the change exists before the answer goes back."""
    if not text:
        return {
            "response_type": "ephemeral",
            "text": "Say what and why in one line: `/change emergency Roll back checkout "
            "to v41, payments failing https://incidents.example.com/123`",
        }
    actor = Actor(command["user_id"])
    try:
        change = await services.run(
            emergency.declare_emergency,
            actor,
            text,
            requested_in=command.get("channel_id", ""),
        )
    except ChangeError as error:
        return {"response_type": "ephemeral", "text": str(error)}
    return messages.emergency_declared(change, services.policy)


async def open_request_modal(trigger_id: str, services: Services, requested_in: str) -> None:
    """Open the blank new-change form. The request is answered meanwhile: what waits is the
    body, already in JSON, not the request nor its client (with thousands of forms waiting
    on a slow Slack, that is what the garbage collector walks)."""
    # The catalog in force: a procedure adopted on any replica is offered at once.
    policy = await services.current_policy()
    view = forms.blank_request_json(policy, json.dumps({"c": requested_in}))
    body = f'{{"trigger_id": {json.dumps(trigger_id)}, "view": {view}}}'.encode()
    services.traffic.at_once(_open_view, services.client, body)


async def _open_view(client: AsyncWebClient, body: bytes) -> None:
    error = await open_view(client, body)
    if error is not None:
        log.warning("could not open the new-change form: %s", error)


async def list_response(services: Services, user_id: str, which: str) -> dict[str, Any]:
    if which not in LISTS:
        return {
            "response_type": "ephemeral",
            "text": "I can list mine, open or awaiting-me changes, not "
            f"'{escape(cut(which, 40))}'.",
        }
    if which == "mine":
        changes = await services.query(queries.mine, user_id)
        owed = await services.query(queries.reviews_owed, user_id)
        shown, owed_shown = await services.standings(changes, owed)
        return messages.list_message("Your open changes", shown, reviews_owed=owed_shown)
    if which == "open":
        changes = await services.query(queries.open_changes)
        (shown,) = await services.standings(changes)
        return messages.list_message("Open changes", shown)
    actor = await services.directory.actor(user_id)
    found = await services.query(queries.awaiting, actor, services.policy)
    owed = await services.query(queries.reviews_owed, user_id)
    shown, owed_shown = await services.standings(found, owed)
    return messages.list_message("Waiting for you", shown, reviews_owed=owed_shown)


async def metrics_response(services: Services, user_id: str, text: str) -> dict[str, Any]:
    """`/change metrics [30d|90d]`: the numbers now, the chart in the asker's DMs after."""
    days = metrics_view.parse_days(text or "30d")
    if days is None:
        return metrics_view.bad_period(text)
    trend = await services.query(queries.metrics, last_days(days, services.clock.now()))
    services.traffic.defer(send_chart, services.client, user_id, trend)
    return metrics_view.metrics_message(trend)


async def send_chart(client: AsyncWebClient, user_id: str, trend: Trend) -> None:
    """The trend drawn, uploaded into the asker's direct messages with the bot."""
    from bot import charts  # matplotlib: loaded by the first chart, not at start

    title = metrics_view.chart_title(trend)
    image = await asyncio.to_thread(lambda: charts.png(charts.trend_figure(trend, title)))
    try:
        opened = await client.conversations_open(users=user_id)
        await client.files_upload_v2(
            channel=opened["channel"]["id"],
            content=image,
            filename="dora-metrics.png",
            title=title,
            alt_txt=metrics_view.summary(trend),
            initial_comment=f"{title}, week by week.",
        )
    except SlackApiError as error:
        log.warning("could not send the metrics chart: %s", error.response.get("error"))


async def show_response(services: Services, text: str) -> dict[str, Any]:
    number = parse_ref(text)
    if number is None:
        return {
            "response_type": "ephemeral",
            "text": "Say which change to show, for example `/change show CHG-0042`.",
        }
    try:
        change, conflicts = await services.query(queries.change_in_place, number)
    except NotFound as error:
        return {"response_type": "ephemeral", "text": str(error)}
    shown = standing(change, services.policy, services.clock.now(), conflicts)
    return messages.show_message(shown, services.policy)
