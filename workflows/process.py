"""The use cases of the change process: one function per thing a person can do.

Each takes a unit of work, a clock and the policy, loads the change, asks the stage machine
whether the move is allowed, applies it and records it in the audit trail, all in one
transaction. Nothing here knows about Slack or SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from workflows import approval_rules
from workflows.audit import AuditEntry
from workflows.chase import Owed
from workflows.errors import ValidationFailed
from workflows.events import Happened
from workflows.freezes import over_change
from workflows.model import (
    MATERIAL_FIELDS,
    SYSTEM,
    Actor,
    Answer,
    Approval,
    Change,
    ChangeDetails,
    Classification,
    Level,
    PeerReview,
    Rejection,
    Rollback,
    Stage,
    TestEvidence,
    format_ref,
)
from workflows.policy import Policy
from workflows.ports import Clock, UnitOfWork
from workflows.risk import described, format_number, score
from workflows.schedule import Conflict
from workflows.stages import Action, Attempt, maybe_out, quorum_met
from workflows.steps import SYSTEM_ACTOR as _SYSTEM
from workflows.steps import Step as _Step
from workflows.steps import changing as _step
from workflows.steps import close_if_done
from workflows.validation import check_text, validate_details

# -- Request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requested:
    """A change just requested, and the open changes its window collides with (recorded in
    its `requested` event; the form shows them to the requester)."""

    change: Change
    conflicts: tuple[Conflict, ...]

    @property
    def ref(self) -> str:
        return self.change.ref


def request_change(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    actor: Actor,
    details: ChangeDetails,
    *,
    submit: bool = True,
    requested_in: str = "",
    form: str = "",
) -> Requested:
    """Record a new change in Request and, unless told otherwise, submit it for review.
    `form`: the id of the form it came from; the same form again raises AlreadyRequested."""
    at = clock.now()
    try:
        checked = validate_details(details, policy, at)
    except ValidationFailed as failed:
        _record_freeze_refusal(uow, actor, at, FREEZE_REF, details, failed)
        raise
    with uow:
        change = uow.changes.add(checked, actor.user_id, at, requested_in, form)
        found = uow.changes.conflicts(change)
        step = _Step(uow, policy, change, at)
        step.note(
            Happened.REQUESTED,
            actor,
            **_describe(checked),
            **_in_freeze(checked, policy, at),
            **_conflicts_noted(found),
        )
        if submit:
            _submit(step, actor)
        uow.changes.save(change)
        uow.commit()
    return Requested(change, tuple(found))


def _conflicting(uow: UnitOfWork, change: Change) -> dict[str, Any]:
    """The open changes its window collides with, for the record: it was requested (or
    approved, or its window moved) knowing them."""
    return _conflicts_noted(uow.changes.conflicts(change))


def _conflicts_noted(found: Sequence[Conflict]) -> dict[str, Any]:
    return {"conflicts": [c.other.ref for c in found]} if found else {}


def _attempt(actor: Actor, policy: Policy, conflicting: dict[str, Any]) -> Attempt:
    """An approval's attempt, counting the conflicts recorded with it."""
    return Attempt(actor, policy, conflicts=len(conflicting.get("conflicts", ())))


#: The audit trail's ref for a request refused before it became a change.
FREEZE_REF = "FREEZE"


def _record_freeze_refusal(
    uow: UnitOfWork,
    actor: Actor,
    at: datetime,
    ref: str,
    details: ChangeDetails,
    failed: ValidationFailed,
) -> None:
    """A window refused because it falls in a freeze is on the record: who asked, for what,
    when, and which freezes said no. (Other problems of a form are not: nothing was asked.)"""
    if not failed.freezes or details.window is None:
        return
    with uow:
        uow.audit.append(
            AuditEntry(
                at=at,
                actor=actor.user_id,
                action=Happened.FREEZE_REFUSED,
                ref=ref,
                from_stage="",
                to_stage="",
                details={
                    "title": details.title.strip()[:150],
                    "classification": details.classification.value,
                    "services": list(details.services),
                    "window_start": details.window.start.isoformat(),
                    "window_end": details.window.end.isoformat(),
                    "freezes": list(failed.freezes),
                },
            ),
            shown=False,
        )
        uow.commit()


def _in_freeze(details: ChangeDetails, policy: Policy, at: datetime) -> dict[str, Any]:
    """An emergency requested into a freeze that allows emergencies goes ahead, on the record:
    the freezes it goes ahead in. (Any other change into a freeze is refused before this.)"""
    found = over_change(policy.freeze, details.window, details.services, at)
    return {"freezes": [one.freeze.name for one in found]} if found else {}


def submit(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    seen_stage: Stage | None = None,
) -> Change:
    """Send a change in Request (new, or back after a rejection) to Review."""
    with _step(uow, clock, policy, number, seen_stage) as step:
        validate_details(step.change.details, policy, None)
        _submit(step, actor)
    return step.change


def _submit(step: _Step, actor: Actor) -> None:
    step.move(Action.SUBMIT, actor)
    step.change.submitted_at = step.at
    change = step.change
    if change.classification is Classification.STANDARD:
        _satisfy_by_procedure(step)


def _satisfy_by_procedure(step: _Step) -> None:
    """Review, Test and Approve are satisfied by the catalog procedure, each one recorded."""
    change = step.change
    procedure = step.policy.procedure(change.details.procedure_id)
    assert procedure is not None  # the guard below refuses otherwise; this is for mypy
    cited = {"procedure": procedure.id, "version": procedure.version, "runbook": procedure.runbook}
    at = step.at
    # The exact version followed is part of the record: the catalog may move on after it.
    change.details = change.details.with_changes(procedure_version=procedure.version)
    step.move(Action.SATISFY_BY_PROCEDURE, _SYSTEM, satisfies="review", **cited)
    change.review = PeerReview(
        SYSTEM, at, f"Pre-approved procedure {procedure.label}", change.risk, "procedure"
    )
    step.move(Action.SATISFY_BY_PROCEDURE, _SYSTEM, satisfies="test", **cited)
    change.test_evidence += (
        TestEvidence(SYSTEM, at, f"Tested procedure {procedure.runbook}", "procedure"),
    )
    step.move(Action.SATISFY_BY_PROCEDURE, _SYSTEM, satisfies="approval", **cited)
    change.approvals += (Approval(SYSTEM, at, procedure.label, kind="procedure"),)


# -- Review and Test ----------------------------------------------------------------------


def record_review(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    assessment: str,
    risk: Level,
    seen_stage: Stage | None = None,
) -> Change:
    """A peer, not the requester, assesses the change and confirms or raises its risk."""
    assessment = check_text("assessment", assessment, "assessment", required=True)
    with _step(uow, clock, policy, number, seen_stage) as step:
        change = step.change
        answers = change.details.answers
        if risk.rank < change.details.risk.rank:
            raise ValidationFailed("risk", _not_lower(change.details, answers))
        step.move(
            Action.RECORD_REVIEW,
            actor,
            assessment=assessment,
            risk=risk.value,
            risk_raised=risk is not change.details.risk,
            # Why the floor was where it was: the questionnaire's result.
            **_floor(change.details),
        )
        change.review = PeerReview(actor.user_id, step.at, assessment, risk)
    return change


def _floor(details: ChangeDetails) -> dict[str, Any]:
    """What set the lowest risk a review could give: the questionnaire's result, if any."""
    if not details.answers:
        return {}
    return {"questionnaire": {"level": details.risk.value, **described(details.answers)}}


def _not_lower(details: ChangeDetails, answers: tuple[Answer, ...]) -> str:
    if answers:
        result = f"{details.risk.value.capitalize()}, a score of {format_number(score(answers))}"
        return (
            "a review may confirm or raise the risk, not lower it below the questionnaire's "
            f"result ({result}); reject the change if its answers are wrong."
        )
    return (
        f"a review may confirm or raise the requested risk ({details.risk}), not lower it; "
        "reject the change if its request is wrong."
    )


def add_test_evidence(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    evidence: str,
    seen_stage: Stage | None = None,
) -> Change:
    """Record evidence from staging; the change then awaits its approvals."""
    evidence = check_text("evidence", evidence, "evidence", required=True)
    with _step(uow, clock, policy, number, seen_stage) as step:
        step.move(Action.ADD_TEST_EVIDENCE, actor, evidence=evidence)
        step.change.test_evidence += (TestEvidence(actor.user_id, step.at, evidence),)
    return step.change


# -- Approve ------------------------------------------------------------------------------


def approve(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    comment: str = "",
    seen_stage: Stage | None = None,
) -> Change:
    """An approver other than the requester approves; with the quorum met, deployment may start.

    For an Emergency change still in Review or Test, the approval stands for the compressed
    review and test, and is recorded as such.
    """
    comment = check_text("comment", comment, "comment")
    with _step(uow, clock, policy, number, seen_stage) as step:
        change = step.change
        compressed = change.stage in (Stage.REVIEW, Stage.TEST)
        retrospective = change.stage is Stage.DEPLOY
        # In Test the peer review is already on record; the approval stands only for testing.
        stands_for = ["test"] if change.review else ["review", "test"]
        conflicting = _conflicting(uow, change)
        step.move(
            Action.APPROVE,
            actor,
            comment=comment,
            **({"stands_for": stands_for} if compressed else {}),
            **({"retrospective": True} if retrospective else {}),
            **conflicting,
            **_counts_for(change, policy, actor),
        )
        if compressed:
            _compress_review_and_test(step, actor)
        change.approvals += (Approval(actor.user_id, step.at, comment, groups=actor.groups),)
        if retrospective:
            change.retro_approval_owed = False
            uow.obligations.settle(Owed.RETROSPECTIVE_APPROVAL, number, step.at)
            close_if_done(step, actor)
        elif quorum_met(change, _attempt(actor, policy, conflicting)) is None:
            step.move(Action.AUTHORISE, _SYSTEM, approvers=list(change.approvers()))
    return change


def _counts_for(change: Change, policy: Policy, actor: Actor) -> dict[str, Any]:
    """For a change with several approval rules, the rules an approval counts toward, as the
    approver's groups stood when approving: the audit trail's answer to "as whom?"."""
    rules = approval_rules.rules_for(change, policy)
    if len(rules) < 2:
        return {}
    return {"counts_for": [rule.name for rule in rules if rule.includes(actor)]}


def _compress_review_and_test(step: _Step, actor: Actor) -> None:
    change, at, who = step.change, step.at, actor.user_id
    if change.review is None:
        note = "Compressed: the emergency approval stands for the peer review."
        change.review = PeerReview(who, at, note, change.details.risk, "compressed")
    if not change.test_evidence:
        note = "Compressed: the emergency approval stands for testing; evidence is owed."
        change.test_evidence = (TestEvidence(who, at, note, "compressed"),)


def reject(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    reason: str,
    seen_stage: Stage | None = None,
) -> Change:
    """A reviewer or approver sends the change back to Request, with a reason."""
    reason = check_text("reason", reason, "reason", required=True)
    with _step(uow, clock, policy, number, seen_stage) as step:
        change = step.change
        stage = change.stage
        withdrawn = list(change.approvers())
        step.move(Action.REJECT, actor, reason=reason, approvals_withdrawn=withdrawn)
        change.rejections += (Rejection(actor.user_id, step.at, reason, stage),)
        _reset_decisions(change)
    return change


def _reset_decisions(change: Change) -> None:
    change.review = None
    change.test_evidence = ()
    change.approvals = ()


# -- Deploy and verify --------------------------------------------------------------------


def start_deployment(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    seen_stage: Stage | None = None,
) -> Change:
    with _step(uow, clock, policy, number, seen_stage) as step:
        step.move(Action.START_DEPLOYMENT, actor)
        step.change.deployment_started_at = step.at
        step.change.deployed_by = actor.user_id
    return step.change


# -- Edit and cancel ----------------------------------------------------------------------


def edit(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    details: ChangeDetails,
    *,
    seen_stage: Stage | None = None,
) -> Change:
    """Change what the request says. A material edit withdraws the approvals given, visibly,
    and an authorised change goes back to Approve; a new classification sends the change back
    to Request."""
    try:
        return _edit(uow, clock, policy, number, actor, details, seen_stage)
    except ValidationFailed as failed:
        _record_freeze_refusal(uow, actor, clock.now(), format_ref(number), details, failed)
        raise


def _edit(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    details: ChangeDetails,
    seen_stage: Stage | None,
) -> Change:
    with _step(uow, clock, policy, number, seen_stage) as step:
        change = step.change
        old = change.details
        if details.procedure_id == old.procedure_id:
            # The form does not show the version followed: it stays as recorded.
            details = details.with_changes(procedure_version=old.procedure_version)
        window_changed = details.window != old.window
        # What a freeze looks at: where the change lands (its window), on what (its services)
        # and what it is (an emergency may go ahead in a freeze that refuses a Normal change).
        frozen_by = (old.services, old.classification, old.procedure_id)
        refreeze = window_changed or frozen_by != (
            details.services,
            details.classification,
            details.procedure_id,
        )
        new = validate_details(
            details, policy, step.at if window_changed else None, freezes=refreeze
        )
        reviewer = change.review.by if change.review and change.review.kind == "peer" else ""
        if new.implementer and new.implementer == reviewer and old.implementer != reviewer:
            # Separation of duties: nobody implements a change they reviewed.
            raise ValidationFailed(
                "implementer",
                f"<@{reviewer}> reviewed this change, so someone else implements it.",
            )
        changed = [
            f.name for f in fields(ChangeDetails) if getattr(old, f.name) != getattr(new, f.name)
        ]
        if not changed:
            return change
        moved = bool({"window", "services"} & set(changed))
        conflicting = _conflicting(uow, replace(change, details=new)) if moved else {}
        scored = bool(old.answers or new.answers) and bool({"answers", "risk"} & set(changed))
        rescored = _rescored(new) if scored else {}
        step.move(Action.EDIT, actor, fields=changed, **conflicting, **rescored)
        risk_before = change.risk
        change.details = new
        # A higher risk asks more approvals (workflows.policy.required_approvals).
        raised = change.risk.rank > risk_before.rank and change.break_glass_at is None
        material = [n for n in changed if n in MATERIAL_FIELDS and not _filled_in(old, n)]
        if "links" in material and not _pull_request_replaced(old, new):
            material.remove("links")  # a ticket or an incident linked: nothing approved moved
        withdrawn = list(change.approvers())
        withdrew = bool(material and withdrawn)
        if withdrew:
            change.approvals = tuple(a for a in change.approvals if a.kind != "approver")
            change.approvals_withdrawn_at = step.at
            step.note(Happened.APPROVALS_WITHDRAWN, actor, withdrawn=withdrawn, because=material)
        reclassified = bool({"classification", "procedure_id"} & set(changed))
        attempt = _attempt(actor, policy, conflicting if moved else _conflicting(uow, change))
        unauthorised = quorum_met(change, attempt) is not None
        if reclassified and change.stage is not Stage.REQUEST:
            step.move(Action.RETURN_TO_REQUEST, _SYSTEM, because=changed)
            _reset_decisions(change)
            if change.retro_approval_owed:  # approved anew, as its new class asks
                change.retro_approval_owed = False
                uow.obligations.settle(Owed.RETROSPECTIVE_APPROVAL, number, step.at)
        elif change.stage is Stage.DEPLOY and (withdrew or raised) and unauthorised:
            # Without its approvals an authorised change may not be deployed: it needs them again.
            # (A break-glass change reached Deploy without any; an edit takes none from it.)
            step.move(Action.RETURN_TO_APPROVE, _SYSTEM, because=material or ["risk"])
    return change


def _rescored(details: ChangeDetails) -> dict[str, Any]:
    """The risk an edit leaves, and the answers that made it, for the record."""
    return {"risk": details.risk.value, **(described(details.answers) if details.answers else {})}


def _pull_request_replaced(old: ChangeDetails, new: ChangeDetails) -> bool:
    """Another pull request named in place of the one approved: GitHub's deployments of it
    would find this change by it (workflows.gate.find_change) and go ahead on its approvals."""
    before, after = old.links.pull_request, new.links.pull_request
    return bool(before and after and before != after)


def _filled_in(old: ChangeDetails, name: str) -> bool:
    """Writing down what was missing (an emergency's description or rollback plan, say) adds
    documentation without changing what was approved; changing what was there does."""
    # Who deploys, the class, and the risk answers (first answers too: they can raise the risk
    # and the approvals it needs) change what was approved whatever they were before.
    if name in ("implementer", "classification", "procedure_id", "answers"):
        return False
    value = getattr(old, name)
    return not (value.is_given if isinstance(value, Rollback) else value)


def cancel(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    reason: str,
    seen_stage: Stage | None = None,
) -> Change:
    """Withdraw a change before its deployment starts, with a reason. A break-glass change
    the gate has let a pipeline deploy is not withdrawn: its outcome is recorded instead. Any
    other change that may have been deployed (the gate allowed it, or a pipeline reported
    deploying it) is withdrawn by an approver only, and the trail says what may be out."""
    reason = check_text("reason", reason, "reason", required=True)
    with _step(uow, clock, policy, number, seen_stage) as step:
        maybe = maybe_out(step.change)
        step.move(Action.CANCEL, actor, reason=reason, **({"maybe_out": maybe} if maybe else {}))
        step.change.cancel_reason = reason
        step.change.closed_at = step.at
        # Cancelled before the gate let anything deploy it under break-glass
        # (stages.not_deployed), a break-glass change has nothing to approve in retrospect.
        step.change.retro_approval_owed = False
        uow.obligations.settle(Owed.RETROSPECTIVE_APPROVAL, number, step.at)
    return step.change


def _describe(details: ChangeDetails) -> dict[str, Any]:
    """The request as the audit trail keeps it."""
    window = details.window
    return {
        "title": details.title,
        "classification": details.classification.value,
        "scope": details.scope,
        "services": list(details.services),
        "risk": details.risk.value,
        "impact": details.impact.value,
        "procedure": details.procedure_id or None,
        "window": [window.start.isoformat(), window.end.isoformat()] if window else None,
        "rollback_given": details.rollback.is_given,
        **(described(details.answers) if details.answers else {}),
    }


# The steps after deployment live in workflows.followup; they are part of the same process.
from workflows.followup import (  # noqa: E402
    close_without_review,
    owed_documents,
    record_outcome,
    submit_post_change_review,
)

__all__ = [
    "add_test_evidence",
    "approve",
    "cancel",
    "close_without_review",
    "edit",
    "owed_documents",
    "record_outcome",
    "record_review",
    "reject",
    "request_change",
    "start_deployment",
    "submit",
    "submit_post_change_review",
]
