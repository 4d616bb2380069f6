"""The card's buttons: each either opens the form its step needs or makes the move at once."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import ids, queries
from bot.listeners.commands import open_request_modal
from bot.listeners.tell import NOT_OURS, Where, tell, tell_failure
from bot.services import Services
from bot.text import slack_date
from bot.views import forms
from workflows import emergency, followup, process
from workflows.chase import Owed
from workflows.errors import ChangeError, StaleAction
from workflows.model import Actor, Change
from workflows.stages import Action, Attempt, move_for

log = logging.getLogger(__name__)

#: Buttons that open a form first; the form's submission makes the move.
FORMS: dict[Action, Callable[[Change], dict[str, Any]]] = {
    Action.RECORD_REVIEW: forms.review_modal,
    Action.ADD_TEST_EVIDENCE: forms.evidence_modal,
    Action.REJECT: forms.reject_modal,
    Action.RECORD_OUTCOME: forms.outcome_modal,
    Action.CANCEL: forms.cancel_modal,
    Action.SUBMIT_POST_CHANGE_REVIEW: forms.post_change_review_modal,
    Action.CLOSE_WITHOUT_REVIEW: forms.close_without_review_modal,
}

#: Buttons that make their move at once.
DIRECT: dict[Action, Callable[..., Any]] = {
    Action.APPROVE: process.approve,
    Action.START_DEPLOYMENT: process.start_deployment,
    Action.SUBMIT: process.submit,
    Action.BREAK_GLASS: emergency.break_glass,
}


def register(app: AsyncApp) -> None:
    app.action(re.compile(rf"^{re.escape(ids.CARD_ACTION_PREFIX)}"))(card_button)
    app.action(ids.NEW_CHANGE)(new_change_button)
    app.action(ids.CLASSIFICATION_PICKED)(classification_picked)
    app.action(ids.WRITE_REVIEW)(write_review_button)
    app.action(re.compile(rf"^{re.escape(ids.SNOOZE_PREFIX)}"))(snooze_button)
    app.action(ids.POLICY_REVIEWED)(policy_reviewed_button)


async def card_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
) -> None:
    await ack()
    try:
        move = Action(action["action_id"].removeprefix(ids.CARD_ACTION_PREFIX))
        target = ids.Target.decode(action.get("value") or "")
    except ValueError:
        await tell(client, body, NOT_OURS)
        return
    if move in DIRECT:
        # Bound to no deadline of Slack's: acknowledgements first (see bot/traffic.py).
        services.traffic.defer(_make_move, Where.of(body), services, DIRECT[move], target)
    elif move in FORMS or move is Action.EDIT:
        # A form must open while the click's trigger_id lasts (3 seconds): at once.
        actor = await services.directory.actor(body["user"]["id"])
        try:
            await _open_form(client, body, services, move, target, actor)
        except ChangeError as error:
            await tell(client, body, str(error))
    else:
        await tell(client, body, NOT_OURS)


async def _make_move(
    where: Where, services: Services, use_case: Callable[..., Any], target: ids.Target
) -> None:
    actor = await services.directory.actor(where.user)
    try:
        await services.run_as_seen(
            target.as_seen, use_case, target.number, actor, seen_stage=target.seen
        )
    except Exception as error:  # after the acknowledgement: the person is told all the same
        await tell_failure(services.client, where, error)


async def _open_form(
    client: AsyncWebClient,
    body: dict[str, Any],
    services: Services,
    move: Action,
    target: ids.Target,
    actor: Actor,
) -> None:
    """Check the person may make the move before asking them to fill a form for it."""
    change = await services.query(queries.change, target.number)
    if target.seen is not None and change.stage is not target.seen:
        raise StaleAction(change.ref, target.seen.label, change.stage.label)
    policy = await services.current_policy()
    move_for(change, move, Attempt(actor, policy))
    if move is Action.EDIT:
        view = forms.request_modal(
            policy,
            callback_id=ids.EDIT_MODAL,
            classification=change.classification,
            details=change.details,
            private_metadata=ids.target_of(change).encode(),
        )
    else:
        view = FORMS[move](change)
    await client.views_open(trigger_id=body["trigger_id"], view=view)


async def new_change_button(ack: AsyncAck, body: dict[str, Any], services: Services) -> None:
    await ack()
    await open_request_modal(body["trigger_id"], services, requested_in="")


async def classification_picked(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
) -> None:
    """The request form adapts to the classification chosen (catalog picker, risk...)."""
    await ack()
    view = body.get("view") or {}
    picked = forms.classification_of(action)
    if picked is None or not view.get("id"):
        return
    policy = await services.current_policy()
    details = forms.parse_request_leniently(view.get("state", {}).get("values", {}), policy)
    updated = forms.request_modal(
        policy,
        callback_id=view.get("callback_id", ids.REQUEST_MODAL),
        classification=picked,
        details=details,
        private_metadata=view.get("private_metadata", ""),
    )
    await client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated)


async def write_review_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
) -> None:
    """From a reminder: open the post-change review, if it is still owed."""
    await ack()
    try:
        target = ids.Target.decode(action.get("value") or "")
    except ValueError:
        await tell(client, body, NOT_OURS)
        return
    actor = await services.directory.actor(body["user"]["id"])
    try:
        await _open_form(
            client,
            body,
            services,
            Action.SUBMIT_POST_CHANGE_REVIEW,
            ids.Target(target.number),
            actor,
        )
    except ChangeError as error:
        await tell(client, body, str(error))


async def snooze_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
) -> None:
    await ack()
    try:
        value = json.loads(action.get("value") or "")
        kind, number, choice = Owed(value["k"]), int(value["n"]), str(value["c"])
    except (ValueError, KeyError, TypeError):
        await tell(client, body, NOT_OURS)
        return
    # Acknowledgements first (see bot/traffic.py).
    services.traffic.defer(_snooze, Where.of(body), services, kind, number, choice)


async def _snooze(where: Where, services: Services, kind: Owed, number: int, choice: str) -> None:
    actor = await services.directory.actor(where.user)
    try:
        later = await services.run(followup.snooze_reminder, kind, number, actor, choice=choice)
    except Exception as error:  # after the acknowledgement: the person is told all the same
        await tell_failure(services.client, where, error)
        return
    until = slack_date(later.snoozed_until or later.next_at)
    await tell(services.client, where, f"💤 Snoozed: the next reminder comes {until}.")


async def policy_reviewed_button(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, services: Services
) -> None:
    await ack()
    actor = Actor(body["user"]["id"])
    try:
        following = await services.run(followup.record_policy_review, actor)
    except Exception as error:
        await tell_failure(client, body, error)
        return
    await tell(
        client,
        body,
        f"📋 Policy review recorded. The next one is due {following.deadline:%Y-%m-%d}.",
    )
