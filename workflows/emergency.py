"""Emergency changes mid-incident: declared in one line, approved by one approver standing
for the compressed review and test, and — when nobody approves in time and the policy allows
it — break-glass, loudly recorded, with an approval owed in retrospect."""

from __future__ import annotations

import re

from workflows.chase import Owed, owe
from workflows.followup import review_cadence
from workflows.model import (
    Actor,
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
