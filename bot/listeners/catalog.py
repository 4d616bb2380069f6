"""The Standard change catalog from Slack: `/change propose-standard`, the proposal form, the
buttons in a proposal's thread and the forms they open. The rules (who decides, what a draft
must say) are in workflows/; these only ask, and show the answer in the thread."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import catalog, ids
from bot.listeners.tell import NOT_OURS, Where, tell, tell_failure
from bot.services import Services
from bot.views import forms
from bot.views import proposals as views
from workflows import proposals
from workflows.catalog import Proposal, ProposalKind, proposal_move
from workflows.errors import ChangeError, PolicyViolation, ValidationFailed
from workflows.model import Actor
from workflows.stages import Action, Attempt

log = logging.getLogger(__name__)

USAGE = (
    "Propose a Standard procedure with `/change propose-standard`; revise or retire one with "
    "`/change propose-standard revise <procedure id>` or `… retire <procedure id>`."
)
#: The forms that decide a proposal with a reason.
REASON_FORMS = {
    ids.PROPOSAL_REJECT_MODAL: proposals.reject_proposal,
    ids.PROPOSAL_WITHDRAW_MODAL: proposals.withdraw_proposal,
}


def register(app: AsyncApp) -> None:
    app.view(ids.PROPOSE_MODAL)(proposal_submitted)
    for callback_id in REASON_FORMS:
        app.view(callback_id)(reason_submitted)
    app.action(re.compile(rf"^{re.escape(ids.PROPOSAL_ACTION_PREFIX)}"))(proposal_button)
    app.options(ids.EVIDENCE)(past_changes_searched)


async def propose_command(
    ack: AsyncAck, command: dict[str, Any], services: Services, text: str
) -> None:
    """`/change propose-standard [revise|retire <procedure id>]`: the form, or why not."""
    words = text.split()
    kind = ProposalKind.ADD
    if words and words[0].lower() in (ProposalKind.REVISE, ProposalKind.RETIRE):
        kind = ProposalKind(words[0].lower())
    procedure_id = words[1].lower() if kind is not ProposalKind.ADD and len(words) > 1 else ""
    if (kind is ProposalKind.ADD and words) or (kind is not ProposalKind.ADD and len(words) != 2):
        refusal: str | None = USAGE
    else:
        # The catalog as last read answers at once; only a procedure it lacks (adopted on
        # another replica, say) is worth the database's word before Slack's 3 seconds end.
        refusal = proposals.cannot_propose(services.policy, kind, procedure_id)
        if refusal and kind is not ProposalKind.ADD:
            refusal = proposals.cannot_propose(await services.current_policy(), kind, procedure_id)
    if refusal:
        await ack(response_type="ephemeral", text=refusal)
        return
    await ack()
    policy = await services.current_policy()
    any_proven = await services.query(catalog.any_proven)
    proposing = views.Proposing(kind, procedure_id, command.get("channel_id", ""))
    view = views.propose_modal(policy, proposing, any_proven)
    try:
        await services.client.views_open(trigger_id=command["trigger_id"], view=view)
    except SlackApiError as error:
        log.warning("could not open the proposal form: %s", error.response.get("error"))


async def past_changes_searched(ack: AsyncAck, payload: dict[str, Any], services: Services) -> None:
    """What the proposal form's past-changes menu offers for what was typed: the latest 100
    changes closed successfully whose title holds the words (or the one a CHG number names)."""
    typed = str(payload.get("value") or "")[:200]
    found = await services.query(catalog.proven, typed)
    await ack(views.proven_options([views.Proven(n, t) for n, t in found]))


async def proposal_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], services: Services
) -> None:
    try:
        proposing = views.Proposing.decode(view.get("private_metadata") or "")
    except (ValueError, KeyError):
        await ack(
            response_action="errors", errors={ids.WHY_ROUTINE: "This form is not one I know."}
        )
        return
    actor = Actor(body["user"]["id"])
    values = ((view.get("state") or {}).get("values")) or {}
    try:
        draft = views.parse_draft(values, proposing)
        proposal = await services.run(proposals.propose, actor, draft)
    except (ValidationFailed, PolicyViolation) as error:
        await ack(response_action="errors", errors=forms.errors_for(error, view=view))
        return
    await ack()
    services.traffic.defer(_post_thread, services, proposal.number, proposing.channel)


async def proposal_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
) -> None:
    await ack()
    try:
        move = Action(action["action_id"].removeprefix(ids.PROPOSAL_ACTION_PREFIX))
        number = ids.decode_proposal(action.get("value") or "")
    except ValueError:
        await tell(client, body, NOT_OURS)
        return
    if move is Action.APPROVE:
        # Bound to no deadline of Slack's: acknowledgements first (see bot/traffic.py).
        services.traffic.defer(_approve, Where.of(body), services, number)
        return
    if move not in (Action.REJECT, Action.CANCEL):
        await tell(client, body, NOT_OURS)
        return
    # A form must open while the click's trigger_id lasts: check the move first, at once.
    actor = await services.directory.actor(body["user"]["id"])
    try:
        proposal = await services.query(catalog.proposal, number)
        proposal_move(proposal, move, Attempt(actor, await services.current_policy()))
        await client.views_open(
            trigger_id=body["trigger_id"], view=views.reason_modal(proposal, move)
        )
    except ChangeError as error:
        await tell(client, body, str(error))


async def reason_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], services: Services
) -> None:
    try:
        number = ids.decode_proposal(view.get("private_metadata") or "")
        use_case = REASON_FORMS[view["callback_id"]]
    except (ValueError, KeyError):
        await ack(response_action="errors", errors={ids.REASON: "This form is not one I know."})
        return
    actor = await services.directory.actor(body["user"]["id"])
    reason = forms.parse_reason(((view.get("state") or {}).get("values")) or {})
    try:
        proposal = await services.run(use_case, number, actor, reason=reason)
    except ValidationFailed as error:
        await ack(response_action="errors", errors=forms.errors_for(error, view=view))
        return
    except ChangeError as error:
        await ack(response_action="errors", errors={ids.REASON: str(error)})
        return
    await ack()
    services.traffic.defer(_show_decision, services, proposal)


async def _approve(where: Where, services: Services, number: int) -> None:
    actor = await services.directory.actor(where.user)
    try:
        proposal = await services.run(proposals.approve_proposal, number, actor)
    except Exception as error:  # after the acknowledgement: the person is told all the same
        await tell_failure(services.client, where, error)
        return
    await _show_decision(services, proposal)


async def _post_thread(services: Services, number: int, origin: str) -> None:
    """The proposal's card, at the root of its thread: in the changes channel, else where
    it was proposed, else in the proposer's messages with the app. Claimed first, so one
    replica posts it; when Slack fails, the claim is given back and the sweep tries again
    (post_unposted), so no proposal is left without its card."""
    claimed = await asyncio.to_thread(
        catalog.claim_posting, services.engine, number, services.clock.now(), origin
    )
    if claimed is None:
        return
    policy = await services.current_policy()
    proposal = await services.query(catalog.proposal, number)
    channel = policy.channels.changes or (claimed if claimed[:1] in ("C", "G") else "")
    try:
        posted = await services.client.chat_postMessage(
            channel=channel or proposal.proposer, **views.proposal_message(proposal, policy)
        )
    except SlackApiError as error:
        why = error.response.get("error")
        log.warning("could not post %s (%s); trying again at the next sweep", proposal.ref, why)
        await asyncio.to_thread(catalog.release_posting, services.engine, number)
        if origin:  # the first try, right after the form: tell the proposer once
            await tell(
                services.client,
                Where(proposal.proposer, ""),
                f"{proposal.ref} is proposed, but Slack would not take its card for the "
                f"decision yet ({why}); I will post it again shortly.",
            )
        return
    await asyncio.to_thread(
        catalog.record_thread, services.engine, number, posted["channel"], posted["ts"]
    )


async def post_unposted(services: Services) -> int:
    """Post the cards of undecided proposals that are not in Slack (Slack failed, or the
    replica stopped before posting): called by the timer's sweep. How many were tried."""
    numbers = await services.query(catalog.unposted, services.clock.now())
    for number in numbers:
        await _post_thread(services, number, "")
    return len(numbers)


async def _show_decision(services: Services, proposal: Proposal) -> None:
    """The card redrawn without its buttons, and the decision said in the thread."""
    channel, ts = await services.query(catalog.thread_of, proposal.number)
    if not ts:
        return
    policy = await services.current_policy()
    try:
        await services.client.chat_update(
            channel=channel, ts=ts, **views.proposal_message(proposal, policy)
        )
        await services.client.chat_postMessage(
            channel=channel, thread_ts=ts, text=views.decided_reply(proposal)
        )
    except SlackApiError as error:
        log.warning("could not show the decision on %s: %s", proposal.ref, error)
