"""A Normal change: peer review, test evidence, approvals, deployment, verification."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    ARTHUR,
    BOB,
    GRACE,
    IVAN,
    NOW,
    PETER,
    Desk,
    normal_details,
    nothing_written,
)
from workflows.errors import NotAllowed, TransitionNotAllowed, ValidationFailed
from workflows.model import Level, Outcome, Stage


def test_a_normal_change_goes_from_request_through_every_stage_to_closed(desk: Desk) -> None:
    change = desk.request()
    assert change.stage is Stage.REVIEW
    assert desk.review(change).stage is Stage.TEST
    assert desk.add_evidence(change).stage is Stage.APPROVE
    assert desk.approve(change).stage is Stage.DEPLOY
    assert desk.start_deployment(change).stage is Stage.DEPLOY
    closed = desk.record_outcome(change)
    assert closed.stage is Stage.CLOSED
    assert desk.stored(change) == closed
    assert desk.actions(change) == [
        "requested",
        "submitted",
        "reviewed",
        "tested",
        "approved",
        "authorised",
        "deployment_started",
        "outcome_recorded",
        "closed",
    ]


def test_every_step_is_recorded_with_who_when_and_which_stages(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    desk.clock.advance(hours=2)
    desk.approve(change, comment="Go ahead.")
    approved, authorised = desk.trail(change)[-2:]
    assert approved.entry.actor == ANNA.user_id
    assert approved.entry.at == NOW + timedelta(hours=2)
    assert (approved.entry.from_stage, approved.entry.to_stage) == ("approve", "approve")
    assert approved.entry.details == {"comment": "Go ahead."}
    assert authorised.entry.actor == "system"
    assert (authorised.entry.from_stage, authorised.entry.to_stage) == ("approve", "deploy")
    assert authorised.entry.details == {"approvers": [ANNA.user_id]}


# -- Request ------------------------------------------------------------------------------


def test_a_request_is_numbered_and_recorded_as_written(desk: Desk) -> None:
    first, second = desk.request(), desk.request()
    assert (first.ref, second.ref) == ("CHG-0001", "CHG-0002")
    requested = desk.trail(first)[0].entry
    assert requested.action == "requested"
    assert requested.details["title"] == "Raise the API connection pool to 50"
    assert requested.details["classification"] == "normal"
    assert requested.details["rollback_given"] is True


def test_a_request_can_wait_in_request_and_be_submitted_later(desk: Desk) -> None:
    change = desk.request(submit=False)
    assert desk.stored(change).stage is Stage.REQUEST
    assert desk.submit(change).stage is Stage.REVIEW


def test_the_implementer_may_submit_the_change(desk: Desk) -> None:
    change = desk.request(normal_details(implementer=IVAN.user_id), submit=False)
    assert desk.submit(change, by=IVAN).stage is Stage.REVIEW


def test_a_bystander_cannot_submit_someone_elses_change(desk: Desk) -> None:
    change = desk.request(submit=False)
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="Only the requester"):
        desk.submit(change, by=BOB)


def test_a_submitted_change_cannot_be_submitted_again(desk: Desk) -> None:
    change = desk.request()
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed):
        desk.submit(change)


# -- Review -------------------------------------------------------------------------------


def test_requester_cannot_review_own_change(desk: Desk) -> None:
    change = desk.request()
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="You requested CHG-0001"):
        desk.review(change, by=ALICE)


def test_implementer_cannot_review_the_change(desk: Desk) -> None:
    change = desk.request(normal_details(implementer=IVAN.user_id))
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="You implement CHG-0001"):
        desk.review(change, by=IVAN)


def test_a_review_needs_an_assessment(desk: Desk) -> None:
    change = desk.request()
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.review(change, assessment="  ")
    assert refused.value.field == "assessment"


def test_a_review_confirms_the_requested_risk(desk: Desk) -> None:
    change = desk.review(desk.request(normal_details(risk=Level.MEDIUM)))
    assert change.review is not None
    assert (change.review.by, change.review.risk, change.review.kind) == (
        PETER.user_id,
        Level.MEDIUM,
        "peer",
    )
    assert desk.last_entry(change, "reviewed").entry.details["risk_raised"] is False


def test_a_review_may_raise_the_risk(desk: Desk) -> None:
    change = desk.review(desk.request(), risk=Level.HIGH)
    assert change.risk is Level.HIGH
    assert change.details.risk is Level.LOW
    assert desk.last_entry(change, "reviewed").entry.details["risk_raised"] is True


def test_a_review_may_not_lower_the_requested_risk(desk: Desk) -> None:
    change = desk.request(normal_details(risk=Level.HIGH))
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.review(change, risk=Level.MEDIUM)
    assert refused.value.field == "risk"
    assert "not lower it" in refused.value.reason


# -- Test ---------------------------------------------------------------------------------


def test_test_evidence_is_recorded_and_the_change_awaits_approval(desk: Desk) -> None:
    change = desk.add_evidence(desk.normal_change_in(Stage.TEST), evidence="Load test at 2x.")
    assert change.stage is Stage.APPROVE
    assert [(e.by, e.evidence, e.kind) for e in change.test_evidence] == [
        (PETER.user_id, "Load test at 2x.", "staging")
    ]


def test_test_evidence_cannot_be_empty(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.TEST)
    with nothing_written(desk.uow), pytest.raises(ValidationFailed, match=r"^evidence:"):
        desk.add_evidence(change, evidence="")


def test_a_change_is_not_approved_before_its_review_and_test(desk: Desk) -> None:
    change = desk.request()
    with (
        nothing_written(desk.uow),
        pytest.raises(TransitionNotAllowed, match="Can't approve a change that is in Review"),
    ):
        desk.approve(change)


# -- Approve ------------------------------------------------------------------------------


def test_requester_cannot_approve_own_change(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE, normal_details())
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="You requested"):
        desk.approve(change, by=ALICE)


def test_an_approver_cannot_approve_a_change_they_requested(desk: Desk) -> None:
    change = desk.request(by=ANNA)
    desk.add_evidence(desk.review(change))
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="You requested"):
        desk.approve(change, by=ANNA)


def test_implementer_cannot_approve_the_change(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE, normal_details(implementer=ARTHUR.user_id))
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="You implement"):
        desk.approve(change, by=ARTHUR)


def test_someone_not_named_as_approver_cannot_approve(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.approve(change, by=PETER)
    assert str(refused.value) == "Only approvers named in the change policy can do that."


def test_a_member_of_the_approvers_group_can_approve(desk: Desk) -> None:
    change = desk.approve(desk.normal_change_in(Stage.APPROVE), by=GRACE)
    assert change.approvers() == (GRACE.user_id,)


def test_one_approval_authorises_a_low_risk_change(desk: Desk) -> None:
    change = desk.approve(desk.normal_change_in(Stage.APPROVE), comment="Ship it.")
    assert change.stage is Stage.DEPLOY
    assert [(a.by, a.comment, a.kind) for a in change.approvals] == [
        (ANNA.user_id, "Ship it.", "approver")
    ]


def test_high_risk_raised_in_review_needs_two_approvals(desk: Desk) -> None:
    change = desk.add_evidence(desk.review(desk.request(), risk=Level.HIGH))
    assert desk.approve(change, by=ANNA).stage is Stage.APPROVE
    assert desk.actions(change)[-1] == "approved"
    assert desk.approve(change, by=ARTHUR).stage is Stage.DEPLOY
    assert desk.last_entry(change, "authorised").entry.details == {
        "approvers": [ANNA.user_id, ARTHUR.user_id]
    }


def test_an_approval_counts_once(desk: Desk) -> None:
    change = desk.add_evidence(desk.review(desk.request(), risk=Level.HIGH))
    desk.approve(change, by=ANNA)
    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.approve(change, by=ANNA)
    assert str(refused.value) == "You have already approved CHG-0001; an approval counts once."
    assert desk.stored(change).approvers() == (ANNA.user_id,)
    assert desk.stored(change).stage is Stage.APPROVE


def test_an_authorised_change_takes_no_more_approvals(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.approve(change, by=ARTHUR)
    assert str(refused.value) == (
        "Can't approve a change that is in Deploy and verify: it needs no approval now."
    )


def test_an_approval_comment_has_a_limit(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    with nothing_written(desk.uow), pytest.raises(ValidationFailed, match=r"^comment:"):
        desk.approve(change, comment="c" * 1001)


# -- Reject -------------------------------------------------------------------------------


def test_a_rejection_needs_a_reason(desk: Desk) -> None:
    change = desk.request()
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.reject(change, by=PETER, reason=" ")
    assert refused.value.field == "reason"


def test_a_reviewer_rejects_the_change_back_to_request(desk: Desk) -> None:
    change = desk.reject(desk.request(), by=PETER, reason="Which pool? Name the service.")
    assert change.stage is Stage.REQUEST
    assert [(r.by, r.reason, r.stage) for r in change.rejections] == [
        (PETER.user_id, "Which pool? Name the service.", Stage.REVIEW)
    ]


def test_rejecting_in_approve_returns_to_request_with_the_approvals_withdrawn(
    desk: Desk,
) -> None:
    change = desk.add_evidence(desk.review(desk.request(), risk=Level.HIGH))
    desk.approve(change, by=ANNA)
    rejected = desk.reject(change, by=ARTHUR, reason="Needs a canary first.")
    assert rejected.stage is Stage.REQUEST
    assert (rejected.approvals, rejected.review, rejected.test_evidence) == ((), None, ())
    assert desk.last_entry(change, "rejected").entry.details == {
        "reason": "Needs a canary first.",
        "approvals_withdrawn": [ANNA.user_id],
    }


def test_the_requester_cannot_reject_their_own_change(desk: Desk) -> None:
    change = desk.request()
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="You requested"):
        desk.reject(change, by=ALICE)


def test_only_an_approver_rejects_a_change_awaiting_approval(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="Only approvers"):
        desk.reject(change, by=PETER)


def test_a_rejected_change_is_fixed_and_goes_round_again(desk: Desk) -> None:
    change = desk.reject(desk.request(), by=PETER)
    desk.edit(change, description="Now with the service named: api.")
    change = desk.add_evidence(desk.review(desk.submit(change)))
    assert desk.approve(change).stage is Stage.DEPLOY
    assert len(change.rejections) == 1


# -- Deploy and verify --------------------------------------------------------------------


@pytest.mark.parametrize("stage", [Stage.REQUEST, Stage.REVIEW, Stage.TEST, Stage.APPROVE])
def test_deployment_cannot_start_before_approval(stage: Stage, desk: Desk) -> None:
    change = desk.normal_change_in(stage)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.start_deployment(change)
    assert str(refused.value) == f"Can't start deploying a change that is in {stage.label}."


def test_the_implementer_starts_the_deployment(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(implementer=IVAN.user_id))
    desk.clock.advance(hours=1)
    started = desk.start_deployment(change, by=IVAN)
    assert (started.deployment_started_at, started.deployed_by) == (
        NOW + timedelta(hours=1),
        IVAN.user_id,
    )


def test_an_approver_does_not_deploy_someone_elses_change(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="Only the requester"):
        desk.start_deployment(change, by=ANNA)


def test_a_deployment_starts_once(desk: Desk) -> None:
    change = desk.deploying()
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed, match="has started"):
        desk.start_deployment(change)


def test_an_outcome_cannot_be_recorded_before_deployment_started(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.record_outcome(change)
    assert str(refused.value) == (
        "Can't record the outcome of a change that is in Deploy and verify: "
        "its deployment has not started."
    )


def test_a_successful_normal_change_closes_automatically(desk: Desk) -> None:
    change = desk.deploying()
    desk.clock.advance(minutes=20)
    closed = desk.record_outcome(change)
    assert closed.stage is Stage.CLOSED
    assert closed.closed_at == closed.outcome_at == NOW + timedelta(minutes=20)
    assert (closed.review_owed, closed.review_due_at) == (False, None)
    assert desk.last_entry(change, "outcome_recorded").entry.details == {
        "outcome": "successful",
        "notes": "",
        "review_owed": False,
        "review_due_at": None,
        "owed_documents": [],
    }


def test_successful_with_issues_closes_too_but_needs_notes(desk: Desk) -> None:
    change = desk.deploying()
    with nothing_written(desk.uow), pytest.raises(ValidationFailed, match=r"^notes:"):
        desk.record_outcome(change, Outcome.SUCCESSFUL_WITH_ISSUES, notes=" ")
    closed = desk.record_outcome(change, Outcome.SUCCESSFUL_WITH_ISSUES, notes="Slow for 2 min.")
    assert closed.stage is Stage.CLOSED
    assert closed.outcome_notes == "Slow for 2 min."


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.ROLLED_BACK])
def test_a_failed_or_rolled_back_normal_change_owes_a_post_change_review(
    outcome: Outcome, desk: Desk
) -> None:
    change = desk.deploying()
    desk.clock.advance(hours=3)
    owing = desk.record_outcome(change, outcome, notes="Errors doubled; reverted.")
    assert owing.stage is Stage.DEPLOY
    assert owing.review_owed
    assert owing.review_due_at == NOW + timedelta(hours=3) + timedelta(hours=48)
    assert owing.owed_documents == ()
    assert owing.closed_at is None


def test_an_unsuccessful_outcome_needs_notes(desk: Desk) -> None:
    change = desk.deploying()
    with nothing_written(desk.uow), pytest.raises(ValidationFailed, match=r"^notes:"):
        desk.record_outcome(change, Outcome.FAILED, notes="")


def test_an_outcome_is_recorded_by_the_people_in_charge(desk: Desk) -> None:
    change = desk.deploying()
    with nothing_written(desk.uow), pytest.raises(NotAllowed):
        desk.record_outcome(change, by=ANNA)


def test_the_post_change_review_of_a_failed_change_closes_it(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(), Outcome.ROLLED_BACK)
    desk.clock.advance(days=1)
    closed = desk.submit_post_change_review(change, by=ANNA)
    assert closed.stage is Stage.CLOSED
    assert closed.closed_at == NOW + timedelta(days=1)
    assert closed.review_owed is False
    assert closed.post_change_review is not None
    assert closed.post_change_review.by == ANNA.user_id


def test_a_closed_change_takes_no_post_change_review(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying())
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed, match="in Closed"):
        desk.submit_post_change_review(change)
