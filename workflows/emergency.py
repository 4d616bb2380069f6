"""Emergency changes mid-incident: declared in one line, approved by one approver standing
for the compressed review and test, and — when nobody approves in time and the policy allows
it — break-glass, loudly recorded, with an approval owed in retrospect."""

from __future__ import annotations

import re
from enum import StrEnum

from workflows.chase import Owed, owe
from workflows.followup import review_cadence
from workflows.model import (
    Actor,
    Approval,
    Change,
    ChangeDetails,
    Classification,
    Links,
    PeerReview,
    Stage,
    TestEvidence,
)
from workflows.policy import Policy
from workflows.ports import Clock, UnitOfWork
from workflows.process import request_change
from workflows.stages import Action
from workflows.steps import changing
from workflows.validation import LIMITS, check_text

_URL = re.compile(r"https?://[^\s<>|]+")


def emergency_details(text: str, policy: Policy) -> ChangeDetails:
    """What one line typed mid-incident says: the title, and the incident link if it has one."""
    line = " ".join(text.split())
    check_text("title", line, "description", required=True)
    found = _URL.search(line)
    # A link too long to record (a dashboard's query, say) must not refuse the emergency: it
    # stays in the description, which holds any line longer than a title.
    incident = found.group(0) if found and len(found.group(0)) <= LIMITS["link"] else ""
    title = line if len(line) <= LIMITS["title"] else line[: LIMITS["title"] - 1] + "…"
    description = line if len(line) > LIMITS["title"] else ""
    return ChangeDetails(
        title=title,
        classification=Classification.EMERGENCY,
        scope=policy.emergency.default_scope or policy.scope[0].id,
        description=description,
        links=Links(incident=incident),
    )


def declare_emergency(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    actor: Actor,
    text: str,
    *,
    requested_in: str = "",
) -> Change:
    """`/change emergency <what and why>`: stored and submitted at once, no form."""
    details = emergency_details(text, policy)
    return request_change(uow, clock, policy, actor, details, requested_in=requested_in).change


def break_glass(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    reason: str = "",
    seen_stage: Stage | None = None,
) -> Change:
    """No approver acted in time: the requester goes ahead alone, on the record."""
    reason = check_text("reason", reason, "reason")
    with changing(uow, clock, policy, number, seen_stage) as step:
        change = step.change
        waited = step.at - change.approvers_asked_at
        step.move(
            Action.BREAK_GLASS,
            actor,
            reason=reason,
            waited_seconds=int(waited.total_seconds()),
            approvals_at_the_time=len(change.approvers()),
            retrospective_approval_owed=True,
        )
        if change.review is None:
            note = "Break-glass: nobody reviewed it before deployment; an approval is owed."
            change.review = PeerReview(
                actor.user_id, step.at, note, change.details.risk, "break_glass"
            )
        if not change.test_evidence:
            untested = "Break-glass: not tested before deployment; evidence is owed."
            change.test_evidence = (TestEvidence(actor.user_id, step.at, untested, "compressed"),)
        change.break_glass_at, change.break_glass_reason = step.at, reason
        change.break_glass_by = actor.user_id
        change.retro_approval_owed = True
        due = step.at + policy.emergency.review_deadline
        uow.obligations.owe(
            owe(
                Owed.RETROSPECTIVE_APPROVAL,
                change.owner,
                step.at,
                due,
                review_cadence(policy),
                number,
            )
        )
    return change


# -- what became of the approval owed in retrospect ------------------------------------------


class Retrospect(StrEnum):
    """What became of the approval a break-glass change owed in retrospect."""

    OWED = "owed"
    APPROVED = "approved"
    #: Cancelled before anything deployed it: nothing to approve.
    CANCELLED = "cancelled"
    #: Reclassified before it deployed: approved as its new class asks, not in retrospect.
    RECLASSIFIED = "reclassified"
    #: Closed without its post-change review, the approval never given.
    CLOSED_UNAPPROVED = "closed_unapproved"


def retrospect(change: Change) -> Retrospect | None:
    """What became of the approval owed in retrospect; None for a change that never broke
    glass. Only an approval given after break-glass, in Deploy, is one in retrospect."""
    if change.break_glass_at is None:
        return None
    if change.retro_approval_owed:
        return Retrospect.OWED
    if _reclassified_since_break_glass(change):
        return Retrospect.RECLASSIFIED
    if approved_in_retrospect(change) is not None:
        return Retrospect.APPROVED
    if change.stage is Stage.CANCELLED:
        return Retrospect.CANCELLED
    return Retrospect.CLOSED_UNAPPROVED


def approved_in_retrospect(change: Change) -> Approval | None:
    """The approval an approver gave the break-glass change once it had gone ahead, if any."""
    since = change.break_glass_at
    if since is None or _reclassified_since_break_glass(change):
        return None
    return next((a for a in change.approvals if a.kind == "approver" and a.at >= since), None)


def _reclassified_since_break_glass(change: Change) -> bool:
    """Break-glass leaves an Emergency change in Deploy; only a reclassification sends it back
    to Request, to be submitted again (and approved then, not in retrospect)."""
    assert change.break_glass_at is not None
    submitted = change.submitted_at or change.created_at
    return (
        change.classification is not Classification.EMERGENCY
        or change.stage is Stage.REQUEST
        or submitted > change.break_glass_at
    )
