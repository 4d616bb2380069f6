"""An Emergency change: one approval stands for review and test; the paperwork is owed after."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    ARTHUR,
    BOB,
    EMMA,
    GRACE,
    NOW,
    OSCAR,
    PETER,
    Desk,
    a_policy,
    a_post_change_review,
    emergency_details,
    nothing_written,
)
from workflows.errors import NotAllowed, TransitionNotAllowed, ValidationFailed
from workflows.model import SYSTEM, Actor, Level, Outcome, Rollback, Stage
from workflows.stages import Action, Attempt, available_actions, move_for

RULES = 'approver_users = ["UEMMA"]\napprover_groups = ["SONCALL"]\n'


def test_an_emergency_change_needs_only_a_title_and_a_scope(desk: Desk) -> None:
    change = desk.request(emergency_details())
    assert change.stage is Stage.REVIEW


def test_one_emergency_approval_in_review_moves_the_change_straight_to_deploy(
    desk: Desk,
) -> None:
    change = desk.approve(desk.request(emergency_details()), by=EMMA, comment="Do it now.")
    assert change.stage is Stage.DEPLOY
    assert desk.actions(change) == ["requested", "submitted", "approved", "authorised"]
    approved = desk.last_entry(change, "approved").entry
    assert (approved.from_stage, approved.to_stage) == ("review", "approve")
    assert approved.details == {"comment": "Do it now.", "stands_for": ["review", "test"]}


def test_the_emergency_approval_is_recorded_as_the_compressed_review_and_test(
    desk: Desk,
) -> None:
    change = desk.approve(desk.request(emergency_details(risk=Level.MEDIUM)), by=EMMA)
    assert change.review is not None
    assert (change.review.by, change.review.kind, change.review.risk) == (
        EMMA.user_id,
        "compressed",
        Level.MEDIUM,
    )
    assert [(e.by, e.kind) for e in change.test_evidence] == [(EMMA.user_id, "compressed")]
    assert change.approvers() == (EMMA.user_id,)


def test_an_emergency_approval_after_a_peer_review_stands_for_the_test_only(
    desk: Desk,
) -> None:
    change = desk.review(desk.request(emergency_details()))
    change = desk.approve(change, by=EMMA)
    assert change.stage is Stage.DEPLOY
    assert desk.last_entry(change, "approved").entry.details["stands_for"] == ["test"]
    assert change.review is not None and change.review.kind == "peer"
    assert [e.kind for e in change.test_evidence] == ["compressed"]


def test_an_emergency_change_may_take_the_full_path(desk: Desk) -> None:
    change = desk.add_evidence(desk.review(desk.request(emergency_details())))
    change = desk.approve(change, by=EMMA)
    assert change.stage is Stage.DEPLOY
    assert "stands_for" not in desk.last_entry(change, "approved").entry.details


def test_an_emergency_needing_two_approvals_waits_in_approve_for_the_second(
    desk: Desk,
) -> None:
    desk.policy = a_policy(approvals="emergency = 2", emergency=RULES)
    change = desk.approve(desk.request(emergency_details()), by=EMMA)
    assert change.stage is Stage.APPROVE
    change = desk.approve(change, by=OSCAR)
    assert change.stage is Stage.DEPLOY
    assert "stands_for" not in desk.last_entry(change, "approved").entry.details


def test_a_normal_approver_cannot_approve_an_emergency(desk: Desk) -> None:
    change = desk.request(emergency_details())
    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.approve(change, by=ANNA)
    assert str(refused.value) == "Only emergency approvers named in the change policy can do that."


def test_a_member_of_the_emergency_approvers_group_can_approve(desk: Desk) -> None:
    assert desk.approve(desk.request(emergency_details()), by=OSCAR).stage is Stage.DEPLOY


def test_without_emergency_approvers_the_normal_approvers_approve_emergencies(
    desk: Desk,
) -> None:
    desk.policy = a_policy(emergency='review_deadline = "48h"')
    change = desk.request(emergency_details())
    with nothing_written(desk.uow), pytest.raises(NotAllowed):
        desk.approve(change, by=EMMA)
    assert desk.approve(change, by=GRACE).stage is Stage.DEPLOY


def test_an_emergency_approver_cannot_approve_their_own_emergency(desk: Desk) -> None:
    change = desk.request(emergency_details(), by=EMMA)
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="You requested"):
        desk.approve(change, by=EMMA)


# -- the review owed after the outcome ----------------------------------------------------


def test_an_emergency_outcome_leaves_a_post_change_review_owed_by_the_deadline(
    desk: Desk,
) -> None:
    change = desk.deploying(emergency_details())
    desk.clock.advance(hours=5)
    owing = desk.record_outcome(change)
    due = NOW + timedelta(hours=5) + timedelta(hours=48)
    assert (owing.stage, owing.review_owed, owing.review_due_at) == (Stage.DEPLOY, True, due)
    assert owing.owed_documents == ("description", "rollback", "test_evidence")
    details = desk.last_entry(change, "outcome_recorded").entry.details
    assert details["review_owed"] is True
    assert details["review_due_at"] == due.isoformat()
    assert details["owed_documents"] == ["description", "rollback", "test_evidence"]


def test_the_review_deadline_is_the_policys(desk: Desk) -> None:
    desk.policy = a_policy(emergency=RULES + 'review_deadline = "90m"')
    owing = desk.record_outcome(desk.deploying(emergency_details()), Outcome.FAILED)
    assert owing.review_due_at == NOW + timedelta(minutes=90)


def test_only_what_the_emergency_skipped_is_owed(desk: Desk) -> None:
    documented = emergency_details(description="Why.", rollback=Rollback(plan="Unblock."))
    owing = desk.record_outcome(desk.deploying(documented))
    assert owing.owed_documents == ("test_evidence",)


def test_an_emergency_that_was_tested_owes_the_review_but_no_documents(desk: Desk) -> None:
    documented = emergency_details(description="Why.", rollback=Rollback(plan="Unblock."))
    change = desk.add_evidence(desk.review(desk.request(documented)))
    change = desk.start_deployment(desk.approve(change, by=EMMA))
    owing = desk.record_outcome(change)
    assert (owing.review_owed, owing.owed_documents) == (True, ())


def test_an_emergency_with_a_review_owed_cannot_be_closed(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    stored = desk.stored(change)
    assert Action.CLOSE not in available_actions(stored, desk.policy)
    with pytest.raises(TransitionNotAllowed) as refused:
        move_for(stored, Action.CLOSE, Attempt(Actor(SYSTEM), desk.policy))
    assert refused.value.reason == "a post-change review is still owed."


@pytest.mark.parametrize("missing", ["description", "rollback", "test_evidence"])
def test_the_post_change_review_must_supply_every_owed_document(missing: str, desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    documents = {"description": "Why.", "rollback": "Unblock.", "test_evidence": "Replayed."}
    del documents[missing]
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.submit_post_change_review(change, review=a_post_change_review(**documents))
    assert refused.value.field == missing


def test_the_post_change_review_supplies_the_owed_documents_and_closes_the_change(
    desk: Desk,
) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    desk.clock.advance(hours=20)
    review = a_post_change_review(
        description="Blocked a client flooding the API.",
        rollback="Remove the block rule.",
        test_evidence="Replayed the traffic in staging.",
        unasked="ignored",
    )
    closed = desk.submit_post_change_review(change, review=review)
    assert closed.stage is Stage.CLOSED
    assert (closed.review_owed, closed.closed_at) == (False, NOW + timedelta(hours=20))
    assert closed.details.description == "Blocked a client flooding the API."
    assert closed.details.rollback == Rollback(plan="Remove the block rule.")
    assert [(e.kind, e.by) for e in closed.test_evidence] == [
        ("compressed", EMMA.user_id),
        ("retrospective", ALICE.user_id),
    ]
    assert closed.post_change_review is not None
    assert closed.post_change_review.by == ALICE.user_id
    assert set(closed.post_change_review.documentation) == {
        "description",
        "rollback",
        "test_evidence",
    }
    submitted = desk.last_entry(change, "post_change_review_submitted").entry
    assert (submitted.from_stage, submitted.to_stage) == ("deploy", "deploy")
    closing = desk.last_entry(change, "closed").entry
    assert (closing.from_stage, closing.to_stage) == ("deploy", "closed")
    assert submitted.details == {
        "classification_justified": True,
        "contributed_to_incident": False,
        "policy_review_triggered": False,
        "documentation": ["description", "rollback", "test_evidence"],
    }


def test_a_change_that_contributed_to_an_incident_triggers_a_policy_review(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()), Outcome.FAILED)
    owed = {doc: "Supplied." for doc in desk.stored(change).owed_documents}
    review = replace(a_post_change_review(**owed), contributed_to_incident=True)
    desk.submit_post_change_review(change, review=review)
    details = desk.last_entry(change, "post_change_review_submitted").entry.details
    assert details["policy_review_triggered"] is True


def test_the_post_change_review_says_what_was_done(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    review = replace(a_post_change_review(), what_was_done=" ")
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.submit_post_change_review(change, review=review)
    assert refused.value.field == "what_was_done"


def test_emergency_approvers_may_submit_the_review_but_bystanders_may_not(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying(emergency_details()))
    for outsider in (BOB, PETER, ANNA, ARTHUR):
        with nothing_written(desk.uow), pytest.raises(NotAllowed):
            desk.submit_post_change_review(change, by=outsider)
    assert desk.submit_post_change_review(change, by=OSCAR).stage is Stage.CLOSED
