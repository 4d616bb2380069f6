"""Every modal the bot opens, its parser, and the mapping of the domain's errors onto the
modal's inputs for `response_action: errors`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot import ids
from bot.views import card
from bot.views.common import context, section, to_dicts
from bot.views.request_form import (
    blank_request_json,
    classification_of,
    parse_request,
    parse_request_leniently,
    request_modal,
    split_services,
)
from bot.views.step_forms import (
    OutcomeInput,
    ReviewInput,
    cancel_modal,
    close_without_review_modal,
    evidence_modal,
    outcome_modal,
    parse_evidence,
    parse_outcome,
    parse_post_change_review,
    parse_reason,
    parse_review,
    post_change_review_modal,
    reject_modal,
    review_modal,
)
from workflows.errors import PolicyViolation, ValidationFailed
from workflows.model import Change
from workflows.schedule import Conflict

__all__ = [
    "OutcomeInput",
    "ReviewInput",
    "blank_request_json",
    "cancel_modal",
    "classification_of",
    "close_without_review_modal",
    "errors_for",
    "evidence_modal",
    "outcome_modal",
    "parse_evidence",
    "parse_outcome",
    "parse_post_change_review",
    "parse_reason",
    "parse_request",
    "parse_request_leniently",
    "parse_review",
    "post_change_review_modal",
    "reject_modal",
    "request_modal",
    "review_modal",
    "split_services",
]

#: The domain's field names (workflows.validation, workflows.process) -> the inputs that
#: show the error, most likely first. The first one present in the view is used.
FIELD_BLOCKS: dict[str, tuple[str, ...]] = {
    "title": (ids.TITLE,),
    "classification": (ids.CLASSIFICATION,),
    "scope": (ids.SCOPE, ids.PROCEDURE),
    # Raised only for a procedure named by a change that is not Standard: its classification
    # is what is wrong (a Standard change outside the catalog is a PolicyViolation).
    "procedure": (ids.CLASSIFICATION, ids.PROCEDURE),
    "description": (ids.DESCRIPTION, ids.OWED_PREFIX + "description"),
    "services": (ids.SERVICES,),
    "risk": (ids.RISK, ids.REVIEW_RISK),
    "impact": (ids.IMPACT,),
    "rollback": (ids.ROLLBACK_PLAN, ids.OWED_PREFIX + "rollback"),
    "window": (ids.WINDOW_END, ids.WINDOW_START),
    "window_start": (ids.WINDOW_START, ids.WINDOW_END),
    "pull_request": (ids.PULL_REQUEST,),
    "ticket": (ids.TICKET,),
    "incident": (ids.INCIDENT,),
    "implementer": (ids.IMPLEMENTER,),
    "assessment": (ids.ASSESSMENT,),
    "evidence": (ids.EVIDENCE,),
    "reason": (ids.REASON,),
    "comment": (ids.REASON,),
    "outcome": (ids.OUTCOME,),
    "notes": (ids.NOTES,),
    "what_was_done": (ids.WHAT_WAS_DONE,),
    "why_it_could_not_wait": (ids.WHY_IT_COULD_NOT_WAIT,),
    "root_cause": (ids.ROOT_CAUSE,),
    "follow_ups": (ids.FOLLOW_UPS,),
    "classification_justified": (ids.CLASSIFICATION_JUSTIFIED,),
    "contributed_to_incident": (ids.CONTRIBUTED_TO_INCIDENT,),
    "test_evidence": (ids.OWED_PREFIX + "test_evidence",),
    # A catalog proposal's (workflows.proposals).
    "procedure_id": (ids.PROCEDURE_ID,),
    "name": (ids.PROCEDURE_NAME,),
    "runbook": (ids.RUNBOOK,),
    "why": (ids.WHY_ROUTINE,),
}
#: Where a policy violation (a Standard change outside the catalog) is shown.
POLICY_BLOCKS = (ids.PROCEDURE, ids.CLASSIFICATION)


def errors_for(
    error: ValidationFailed | PolicyViolation, *, view: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """`{block_id: message}` for `response_action: errors`: every problem at once.

    With the submitted `view`, each error goes on an input the view really has (Slack refuses
    errors for blocks it does not show), falling back to its first input; two problems on
    one input are said together.
    """
    if isinstance(error, ValidationFailed):
        found = [
            (FIELD_BLOCKS.get(field, (field, ids.OWED_PREFIX + field)), reason)
            for field, reason in error.problems
        ]
    else:
        found = [(POLICY_BLOCKS, error.message)]
    present = _input_blocks(view) if view is not None else None
    errors: dict[str, str] = {}
    for candidates, reason in found:
        message = reason[:1].upper() + reason[1:]
        if present is None:
            block_id = candidates[0]
        else:
            fallback = present[0] if present else candidates[0]
            block_id = next((b for b in candidates if b in present), fallback)
        errors[block_id] = f"{errors[block_id]} {message}" if block_id in errors else message
    return errors


def _input_blocks(view: Mapping[str, Any]) -> list[str]:
    blocks = view.get("blocks")
    return [
        str(block["block_id"])
        for block in (blocks if isinstance(blocks, list) else [])
        if isinstance(block, Mapping) and block.get("type") == "input" and block.get("block_id")
    ]


def requested_in_conflict(change: Change, conflicts: Sequence[Conflict]) -> dict[str, Any]:
    """What the request form turns into when the new change's window collides with others:
    it is requested (a conflict warns, it does not refuse), and the requester sees with whom
    to agree before the approvers do."""
    lines = "\n".join(card.conflict_lines(conflicts))
    blocks = [
        section(f"*{change.ref} is requested.* Its window overlaps other open changes:"),
        section(lines),
        context(
            "Both cards show the overlap, and the approvers see it before they approve. "
            "Move the window with Edit on the card if you can; otherwise agree the order in "
            "the threads."
        ),
    ]
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Requested, with overlaps"},
        "close": {"type": "plain_text", "text": "OK"},
        "blocks": to_dicts(blocks),
    }
