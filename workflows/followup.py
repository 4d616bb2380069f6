"""After deployment: the outcome, and what it leaves owed — a post-change review with the
documentation an emergency skipped, a retrospective approval after break-glass — and the
chase of each, including the policy's own review."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from workflows.audit import AuditEntry
from workflows.chase import Cadence, Obligation, Owed, owe, snooze
from workflows.errors import NotAllowed, NotFound
from workflows.events import Happened
from workflows.model import (
    OWED_DOCUMENTS,
    Actor,
    Change,
    Classification,
    Outcome,
    PostChangeReview,
    Rollback,
    Stage,
    TestEvidence,
)
from workflows.policy import Policy
from workflows.ports import Clock, UnitOfWork
from workflows.stages import Action
from workflows.steps import Step, changing, close_if_done
from workflows.validation import check_text

POLICY_REF = "POLICY"
WEEK = timedelta(days=7)


def review_cadence(policy: Policy) -> Cadence:
    return Cadence(policy.emergency.reminder_every, policy.emergency.escalation_every)


def record_outcome(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    outcome: Outcome,
    notes: str = "",
    seen_stage: Stage | None = None,
) -> Change:
    """Verify the deployment. Emergency, failed and rolled-back changes then owe a review."""
    notes = check_text("notes", notes, "notes", required=outcome is not Outcome.SUCCESSFUL)
    with changing(uow, clock, policy, number, seen_stage) as step:
        conclude(step, actor, outcome, notes)
    return step.change


def conclude(step: Step, actor: Actor, outcome: Outcome, notes: str, **details: object) -> None:
    """Record the outcome, owe the post-change review where one is owed, close if nothing is.

    A person's outcome and a pipeline's report come here alike, so they owe the same."""
    change, policy = step.change, step.policy
    emergency = change.classification is Classification.EMERGENCY
    owes = emergency or outcome.owes_review
    # Only an emergency skips documentation; a Standard procedure stands for its own.
    owed_docs = owed_documents(change) if emergency else ()
    due = step.at + policy.emergency.review_deadline if owes else None
    step.move(
        Action.RECORD_OUTCOME,
        actor,
        outcome=outcome.value,
        notes=notes,
        review_owed=owes,
        review_due_at=due.isoformat() if due else None,
        owed_documents=list(owed_docs),
        **details,
    )
    change.outcome, change.outcome_notes, change.outcome_at = outcome, notes, step.at
    change.review_owed, change.review_due_at = owes, due
    change.owed_documents = owed_docs
    if due is not None:
        step.uow.obligations.owe(
            owe(
                Owed.POST_CHANGE_REVIEW,
                change.owner,
                step.at,
                due,
                review_cadence(policy),
                change.number,
            )
        )
    close_if_done(step, actor)


def owed_documents(change: Change) -> tuple[str, ...]:
    """Documentation an emergency change skipped, which its post-change review must supply."""
    missing = {
        "description": not change.details.description.strip(),
        "rollback": not change.details.rollback.is_given,
        "test_evidence": all(e.kind == "compressed" for e in change.test_evidence),
    }
    return tuple(doc for doc in OWED_DOCUMENTS if missing[doc])


def submit_post_change_review(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    review: PostChangeReview,
    *,
    seen_stage: Stage | None = None,
) -> Change:
    """The review the policy still demands after an emergency or a failed change; closes it.

    If an uncontrolled or poorly managed change contributed to an incident, the policy itself
    is due for review: its owner is chased from now on.
    """
    for name in ("what_was_done", "why_it_could_not_wait", "root_cause", "follow_ups"):
        check_text(name, getattr(review, name), "review_text", required=name == "what_was_done")
    with changing(uow, clock, policy, number, seen_stage) as step:
        change = step.change
        documentation = _owed_documentation(change, review.documentation)
        review = replace(review, by=actor.user_id, at=step.at, documentation=documentation)
        step.move(
            Action.SUBMIT_POST_CHANGE_REVIEW,
            actor,
            classification_justified=review.classification_justified,
            contributed_to_incident=review.contributed_to_incident,
            policy_review_triggered=review.contributed_to_incident,
            documentation=sorted(documentation),
        )
        _supply_documentation(change, actor, step.at, documentation)
        change.post_change_review = review
        change.review_owed = False
        uow.obligations.settle(Owed.POST_CHANGE_REVIEW, number, step.at)
        if review.contributed_to_incident:
            _policy_review_due_now(step, policy, actor)
        close_if_done(step, actor)
    return change


def _owed_documentation(change: Change, given: dict[str, str]) -> dict[str, str]:
    documentation = {}
    for doc in change.owed_documents:
        documentation[doc] = check_text(doc, given.get(doc, ""), "review_text", required=True)
    return documentation


def _supply_documentation(change: Change, actor: Actor, at: datetime, docs: dict[str, str]) -> None:
    if "description" in docs:
        change.details = change.details.with_changes(description=docs["description"])
    if "rollback" in docs:
        change.details = change.details.with_changes(rollback=Rollback(plan=docs["rollback"]))
    if "test_evidence" in docs:
        evidence = TestEvidence(actor.user_id, at, docs["test_evidence"], "retrospective")
        change.test_evidence += (evidence,)


def close_without_review(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    number: int,
    actor: Actor,
    *,
    reason: str,
    seen_stage: Stage | None = None,
) -> Change:
    """An approver closes a change whose review will never come; the reason is kept."""
    reason = check_text("reason", reason, "reason", required=True)
    with changing(uow, clock, policy, number, seen_stage) as step:
        step.move(Action.CLOSE_WITHOUT_REVIEW, actor, reason=reason)
        change = step.change
        change.closed_without_review = reason
        change.review_owed = False
        # Nothing is chased on a closed change: the retrospective approval is settled with it.
        change.retro_approval_owed = False
        change.closed_at = step.at
        for kind in (Owed.POST_CHANGE_REVIEW, Owed.RETROSPECTIVE_APPROVAL):
            uow.obligations.settle(kind, number, step.at)
    return change


# -- the chase: snoozes and the policy review -------------------------------------------------


def snooze_reminder(
    uow: UnitOfWork,
    clock: Clock,
    policy: Policy,
    kind: Owed,
    number: int,
    actor: Actor,
    *,
    choice: str,
) -> Obligation:
    """Put the next reminder off by an hour or a day; recorded in the audit trail."""
    if number == 0:
        return _snooze_policy_review(uow, clock, policy, actor, choice)
    with changing(uow, clock, policy, number, None) as step:
        obligation = uow.obligations.find(kind, number)
        if obligation is None:
            raise NotFound(kind.label, step.change.ref)
        if actor.user_id not in (obligation.owner, *step.change.people_in_charge()):
            reason = f"Only {step.change.ref}'s owner can snooze its reminders."
            raise NotAllowed(actor.user_id, "snooze", reason)
        later = snooze(obligation, step.at, choice)
        uow.obligations.update(later)
        assert later.snoozed_until is not None
        step.note(
            Happened.REMINDER_SNOOZED, actor, kind=kind.value, until=later.snoozed_until.isoformat()
        )
    return later


def _snooze_policy_review(
    uow: UnitOfWork, clock: Clock, policy: Policy, actor: Actor, choice: str
) -> Obligation:
    with uow:
        at = clock.now()
        obligation = uow.obligations.find(Owed.POLICY_REVIEW, 0)
        if obligation is None:
            raise NotFound("policy review", "due")
        if actor.user_id != policy.policy.owner:
            raise NotAllowed(actor.user_id, "snooze", "Only the policy owner can snooze this.")
        later = snooze(obligation, at, choice)
        uow.obligations.update(later)
        assert later.snoozed_until is not None
        _policy_note(
            uow, at, actor, Happened.REMINDER_SNOOZED, until=later.snoozed_until.isoformat()
        )
        uow.commit()
    return later


def ensure_policy_review(uow: UnitOfWork, clock: Clock, policy: Policy) -> Obligation:
    """The policy review is always owed: by its yearly date, or sooner after an incident."""
    with uow:
        due = policy.policy_review_due()
        obligation = uow.obligations.find(Owed.POLICY_REVIEW, 0)
        if obligation is None or obligation.owner != policy.policy.owner:
            cadence = Cadence(WEEK, WEEK)
            obligation = replace(
                owe(Owed.POLICY_REVIEW, policy.policy.owner, clock.now(), due, cadence),
                next_at=due,
            )
            uow.obligations.owe(obligation)
            uow.commit()
        return obligation


def record_policy_review(
    uow: UnitOfWork, clock: Clock, policy: Policy, actor: Actor, *, note: str = ""
) -> Obligation:
    """The policy was reviewed, by its owner: stop chasing, and owe the next review a year on."""
    note = check_text("note", note, "comment")
    owner = policy.policy.owner
    if actor.user_id != owner:
        reason = (
            "Only the owner of the change policy can record its review."
            if owner
            else "The change policy names no owner (policy.owner) to record its review."
        )
        raise NotAllowed(actor.user_id, "record the policy review", reason)
    with uow:
        at = clock.now()
        uow.obligations.settle(Owed.POLICY_REVIEW, 0, at)
        due = at + policy.policy.review_every
        following = Obligation(Owed.POLICY_REVIEW, policy.policy.owner, due, due)
        uow.obligations.owe(following)
        _policy_note(uow, at, actor, Happened.POLICY_REVIEWED, note=note, next_due=due.isoformat())
        uow.commit()
    return following


def _policy_review_due_now(step: Step, policy: Policy, actor: Actor) -> None:
    """A week to review the policy, or sooner if its yearly review is due before: a review
    already overdue stays overdue (and escalated) rather than starting afresh."""
    deadline = step.at + WEEK
    owed = step.uow.obligations.find(Owed.POLICY_REVIEW, 0)
    if owed is None or owed.deadline > deadline:  # else due sooner already: chased as it was
        obligation = Obligation(Owed.POLICY_REVIEW, policy.policy.owner, deadline, step.at)
        step.uow.obligations.owe(obligation)
    step.note(Happened.POLICY_REVIEW_TRIGGERED, actor, owner=policy.policy.owner)


def _policy_note(
    uow: UnitOfWork, at: datetime, actor: Actor, what: Happened, **details: object
) -> None:
    uow.audit.append(AuditEntry(at, actor.user_id, what, POLICY_REF, "", "", dict(details)))
