"""What happened: the one vocabulary of the audit trail. Every event the process records is
named here, and the adapters (the thread's replies, the notices, who is called, the tests)
key on these names, never on strings of their own."""

from __future__ import annotations

from enum import StrEnum

from workflows.audit import AuditEntry
from workflows.model import Classification, Stage


class Happened(StrEnum):
    # A person's move, or the process's own (workflows.stages.Action.past).
    SUBMITTED = "submitted"
    REVIEWED = "reviewed"
    TESTED = "tested"
    APPROVED = "approved"
    REJECTED = "rejected"
    DEPLOYMENT_STARTED = "deployment_started"
    OUTCOME_RECORDED = "outcome_recorded"
    POST_CHANGE_REVIEW_SUBMITTED = "post_change_review_submitted"
    CLOSED = "closed"
    EDITED = "edited"
    CANCELLED = "cancelled"
    SATISFIED_BY_PROCEDURE = "satisfied_by_procedure"
    AUTHORISED = "authorised"
    RETURNED_TO_REQUEST = "returned_to_request"
    RETURNED_TO_APPROVE = "returned_to_approve"
    BREAK_GLASS = "break_glass"
    CLOSED_WITHOUT_REVIEW = "closed_without_review"
    # Recorded without a move.
    REQUESTED = "requested"
    APPROVALS_WITHDRAWN = "approvals_withdrawn"
    REMINDER_SENT = "reminder_sent"
    REMINDER_ESCALATED = "reminder_escalated"
    REMINDER_SNOOZED = "reminder_snoozed"
    POLICY_REVIEW_TRIGGERED = "policy_review_triggered"
    POLICY_REVIEWED = "policy_reviewed"
    # The deploy gate and the pipelines.
    GATE_DECIDED = "gate_decided"
    #: A request or an edit refused because its window falls in a freeze.
    FREEZE_REFUSED = "freeze_refused"
    PIPELINE_DEPLOYMENT_STARTED = "pipeline_deployment_started"
    PIPELINE_DEPLOYMENT_FINISHED = "pipeline_deployment_finished"
    UNGATED_DEPLOYMENT = "ungated_deployment"
    # The Standard change catalog: a proposal's creation (its decisions are the moves').
    PROPOSED = "proposed"
    # Machine identities.
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"


#: The decisions on a change its requester hears of directly, when someone else makes them.
NOTICED = frozenset(
    {
        Happened.APPROVED,
        Happened.REJECTED,
        Happened.APPROVALS_WITHDRAWN,
        Happened.AUTHORISED,
        Happened.SATISFIED_BY_PROCEDURE,
    }
)


def calls_approvers(entry: AuditEntry, classification: Classification) -> bool:
    """Whether the approvers are asked to act on this event: when a change reaches Approve
    (not by an approval, and never a Standard change, which its procedure approves), and at
    once when an emergency is submitted, since every minute counts."""
    reached_approve = entry.to_stage == Stage.APPROVE.value != entry.from_stage
    if reached_approve and entry.action != Happened.APPROVED:
        return classification is not Classification.STANDARD
    return (
        classification is Classification.EMERGENCY
        and entry.action == Happened.SUBMITTED
        and entry.to_stage == Stage.REVIEW.value
    )
