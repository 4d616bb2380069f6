"""A catalog proposal in Slack: the form that proposes a procedure (or its revision or
retirement), its parser, the card at the root of its thread with the buttons of the moves
open now, and the forms that reject or withdraw it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement
from slack_sdk.models.views import View

from bot import ids, text
from bot.views import inputs
from bot.views.common import AnyBlock, context, scope_name, section, to_dicts
from bot.views.inputs import Values
from bot.views.request_form import SERVICES_LIMIT, split_services
from workflows.catalog import (
    Draft,
    Proposal,
    ProposalKind,
    ProposalStage,
    open_proposal_actions,
    version_made,
)
from workflows.errors import ValidationFailed
from workflows.model import format_ref, parse_ref
from workflows.policy import Policy, Procedure
from workflows.stages import Action
from workflows.validation import LIMITS

TITLES = {
    ProposalKind.ADD: "Propose a procedure",
    ProposalKind.REVISE: "Revise a procedure",
    ProposalKind.RETIRE: "Retire a procedure",
}
BUTTONS = {
    Action.APPROVE: ("Approve", "primary"),
    Action.REJECT: ("Reject", "danger"),
    Action.CANCEL: ("Withdraw", None),
}


@dataclass(frozen=True)
class Proposing:
    """What a proposal form is for, carried in its private_metadata."""

    kind: ProposalKind
    procedure_id: str = ""
    #: Where `/change propose-standard` was typed: the thread goes there if the policy names
    #: no changes channel.
    channel: str = ""

    def encode(self) -> str:
        return json.dumps({"k": self.kind.value, "i": self.procedure_id, "c": self.channel})

    @classmethod
    def decode(cls, value: str) -> Proposing:
        data = json.loads(value)
        if not isinstance(data, dict):
            raise ValueError("not a catalog proposal form")
        return cls(ProposalKind(data["k"]), str(data.get("i", "")), str(data.get("c", "")))


@dataclass(frozen=True)
class Proven:
    """A past change a proposal may cite: closed, with a successful outcome."""

    number: int
    title: str


# -- the proposal form ----------------------------------------------------------------------


def propose_modal(policy: Policy, proposing: Proposing, any_proven: bool) -> dict[str, Any]:
    """The form for `proposing`; a revision starts from the procedure as it is. Without
    `any_proven` (no change closed successfully yet), it says that nothing can be cited."""
    current = policy.procedure(proposing.procedure_id)
    note = text.render_macro(
        "proposals.j2", "form_note", kind=proposing.kind.value, procedure=current
    )
    blocks: list[AnyBlock] = [section(note)]
    if proposing.kind is ProposalKind.ADD:
        blocks.append(
            inputs.text_input(
                ids.PROCEDURE_ID,
                "Procedure id",
                limit=60,
                hint="Lower-case letters, digits and dashes: how requests name it.",
                placeholder="restart-service",
            )
        )
    if proposing.kind is ProposalKind.RETIRE:
        blocks.append(_why("Why retire it?", ""))
    else:
        blocks += _procedure_inputs(policy, current, any_proven)
    view = View(
        type="modal",
        callback_id=ids.PROPOSE_MODAL,
        title=TITLES[proposing.kind],
        submit="Propose",
        close="Cancel",
        blocks=blocks,
        private_metadata=proposing.encode(),
    )
    return view.to_dict()


def _procedure_inputs(
    policy: Policy, current: Procedure | None, any_proven: bool
) -> list[AnyBlock]:
    scopes = [inputs.option(s.id, s.name) for s in policy.scope]
    blocks: list[AnyBlock] = [
        inputs.text_input(
            ids.PROCEDURE_NAME,
            "Name",
            limit=LIMITS["title"],
            initial=current.name if current else "",
        ),
        inputs.select(ids.SCOPE, "Scope", scopes, initial=current.scope if current else None),
        inputs.text_input(
            ids.RUNBOOK,
            "Runbook",
            limit=LIMITS["link"],
            initial=current.runbook if current else "",
            hint="The web address (https://…) of the steps the procedure follows.",
        ),
        inputs.text_input(
            ids.SERVICES,
            "Services",
            limit=SERVICES_LIMIT,
            hint="The services it is used on, separated by commas.",
        ),
        _why("Why is it routine?", "Low risk, well understood, done often without trouble."),
    ]
    if not any_proven:
        blocks.append(section(text.render_macro("proposals.j2", "no_evidence")))
        return blocks
    blocks.append(
        inputs.searched_multi_select(
            ids.EVIDENCE,
            "Past changes that used it successfully",
            hint="Changes closed with a successful outcome, the latest first.",
            placeholder="Type words of a title, or CHG-42",
        )
    )
    return blocks


def proven_options(proven: Sequence[Proven]) -> dict[str, Any]:
    """The answer to a search of the past-changes menu: its options, as Slack takes them."""
    options = [inputs.option(str(p.number), f"{format_ref(p.number)} · {p.title}") for p in proven]
    return {"options": [o.to_dict() for o in options[: inputs.MAX_OPTIONS]]}


def _why(label: str, hint: str) -> AnyBlock:
    return inputs.text_input(
        ids.WHY_ROUTINE, label, limit=LIMITS["description"], multiline=True, hint=hint
    )


def parse_draft(values: Values, proposing: Proposing) -> Draft:
    """The draft as the form holds it; ValidationFailed for a choice the form did not offer.
    (What the catalog and the record say of it is for the use case.)"""
    selected = inputs.state_of(values, ids.EVIDENCE).get("selected_options") or []
    evidence = []
    for option in selected:
        value = option.get("value") if isinstance(option, dict) else None
        number = parse_ref(value) if isinstance(value, str) else None
        if number is None:
            raise ValidationFailed("evidence", f"{value!r} is not one of the changes offered.")
        evidence.append(number)
    return Draft(
        kind=proposing.kind,
        procedure_id=inputs.read_text(values, ids.PROCEDURE_ID) or proposing.procedure_id,
        name=inputs.read_text(values, ids.PROCEDURE_NAME),
        scope=inputs.read_option(values, ids.SCOPE) or "",
        runbook=inputs.read_text(values, ids.RUNBOOK),
        services=split_services(inputs.read_text(values, ids.SERVICES)),
        why=inputs.read_text(values, ids.WHY_ROUTINE),
        evidence=tuple(evidence),
    )


# -- the card -------------------------------------------------------------------------------


def proposal_message(proposal: Proposal, policy: Policy) -> dict[str, Any]:
    """The card at the root of the proposal's thread, with the buttons of the moves open."""
    heading = text.render_macro("proposals.j2", "heading", proposal=proposal)
    version = (
        version_made(proposal.draft, policy)
        if proposal.stage is ProposalStage.PROPOSED
        else proposal.procedure_version
    )
    body = text.render_macro(
        "proposals.j2",
        "body",
        proposal=proposal,
        scope=scope_name(policy, proposal.draft.scope),
        version=version,
        evidence=[format_ref(n) for n in proposal.draft.evidence],
    )
    blocks: list[AnyBlock] = [section(heading), section(body), context(_status(proposal, policy))]
    buttons = [_button(action, proposal) for action in open_proposal_actions(proposal, policy)]
    if buttons:
        blocks.append(ActionsBlock(block_id="proposal_actions", elements=buttons))
    return {"text": text.plain_label(heading.replace("*", ""), 150), "blocks": to_dicts(blocks)}


def _status(proposal: Proposal, policy: Policy) -> str:
    if proposal.stage is ProposalStage.PROPOSED:
        return text.render_macro("proposals.j2", "awaiting", deciders=deciders(policy))
    return text.render_macro("proposals.j2", proposal.stage.value, proposal=proposal)


def deciders(policy: Policy) -> str:
    """Who decides catalog proposals, as mentions."""
    named = [
        *([text.mention(policy.policy.owner)] if policy.policy.owner else []),
        *(text.mention(u) for u in policy.catalog_approvers.users),
        *(text.group_mention(g) for g in policy.catalog_approvers.groups),
    ]
    return ", ".join(dict.fromkeys(named)) or "nobody (name policy.owner or catalog_approvers)"


def _button(action: Action, proposal: Proposal) -> ButtonElement:
    label, style = BUTTONS[action]
    return ButtonElement(
        text=label,
        action_id=ids.proposal_action_id(action),
        value=ids.encode_proposal(proposal.number),
        style=style,
    )


def decided_reply(proposal: Proposal) -> str:
    """The reply in the thread once the proposal is decided or withdrawn."""
    return text.render_macro(
        "proposals.j2", "decided_reply", proposal=proposal, procedure=proposal.draft.name
    )


# -- rejecting and withdrawing -------------------------------------------------------------


def reason_modal(proposal: Proposal, action: Action) -> dict[str, Any]:
    callback_id, title, submit = (
        (ids.PROPOSAL_REJECT_MODAL, "Reject proposal", "Reject")
        if action is Action.REJECT
        else (ids.PROPOSAL_WITHDRAW_MODAL, "Withdraw proposal", "Withdraw")
    )
    about = text.render_macro("proposals.j2", "heading", proposal=proposal)
    view = View(
        type="modal",
        callback_id=callback_id,
        title=title,
        submit=submit,
        close="Back",
        blocks=[
            section(about),
            inputs.text_input(ids.REASON, "Why", limit=LIMITS["reason"], multiline=True),
        ],
        private_metadata=ids.encode_proposal(proposal.number),
    )
    return view.to_dict()
