"""Changing a request after it was made, and withdrawing it before deployment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    ARTHUR,
    BOB,
    EMMA,
    GRACE,
    IVAN,
    NOW,
    OSCAR,
    PETER,
    TOMORROW,
    Desk,
    emergency_details,
    normal_details,
    nothing_written,
    standard_details,
)
from workflows.chase import Owed
from workflows.errors import NotAllowed, TransitionNotAllowed, ValidationFailed
from workflows.model import (
    MATERIAL_FIELDS,
    Actor,
    Change,
    Classification,
    Level,
    Links,
    Rollback,
    Stage,
    Window,
)


def awaiting_a_second_approval(desk: Desk, **details: Any) -> Change:
    """A high-risk Normal change in Approve that Anna has approved and Arthur has not."""
    change = desk.add_evidence(
        desk.review(desk.request(normal_details(**details)), risk=Level.HIGH)
    )
    return desk.approve(change, by=ANNA)


LATER = Window(TOMORROW.start + timedelta(days=1), TOMORROW.end + timedelta(days=1))

MATERIAL_EDITS: dict[str, Any] = {
    "title": "Raise the API connection pool to 60",
    "description": "Sixty, after the load test.",
    "scope": "database",
    "services": ("api", "worker"),
    "window": LATER,
    "rollback": Rollback(plan="Set the pool back to 20."),
    "implementer": IVAN.user_id,
}


def test_every_material_field_has_an_edit_here_or_a_reclassification_test() -> None:
    # The questionnaire's answers only exist under a policy with questions: their edit is in
    # tests/unit/test_risk.py.
    elsewhere = {"classification", "procedure_id", "answers", "links"}  # links: below
    assert set(MATERIAL_FIELDS) == set(MATERIAL_EDITS) | elsewhere


# -- edits and approvals ------------------------------------------------------------------


def test_editing_a_material_field_after_approval_withdraws_the_approvals(desk: Desk) -> None:
    change = awaiting_a_second_approval(desk)
    edited = desk.edit(change, title="Raise the API connection pool to 60")
    assert (edited.stage, edited.approvals) == (Stage.APPROVE, ())
    assert edited.title == "Raise the API connection pool to 60"
    assert desk.actions(change)[-2:] == ["edited", "approvals_withdrawn"]
    withdrawn = desk.last_entry(change, "approvals_withdrawn").entry
    assert withdrawn.actor == ALICE.user_id
    assert withdrawn.details == {"withdrawn": [ANNA.user_id], "because": ["title"]}
    assert desk.last_entry(change, "edited").entry.details == {"fields": ["title"]}


@pytest.mark.parametrize(("field", "value"), MATERIAL_EDITS.items())
def test_each_material_field_withdraws_the_approvals(field: str, value: Any, desk: Desk) -> None:
    change = awaiting_a_second_approval(desk)
    edited = desk.edit(change, **{field: value})
    assert edited.approvals == ()
    assert desk.last_entry(change, "approvals_withdrawn").entry.details["because"] == [field]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("risk", Level.HIGH),
        ("impact", Level.MEDIUM),
        ("links", Links(ticket="https://example.com/T-9")),
    ],
)
def test_editing_a_non_material_field_keeps_the_approvals(
    field: str, value: Any, desk: Desk
) -> None:
    change = awaiting_a_second_approval(desk)
    edited = desk.edit(change, **{field: value})
    assert edited.approvers() == (ANNA.user_id,)
    assert desk.actions(change)[-1] == "edited"


def test_another_pull_request_in_place_of_the_approved_one_withdraws_the_approvals(
    desk: Desk,
) -> None:
    """GitHub's deployments find their change by it: the approvals were given for the one
    linked, not for any other."""
    approved = "https://github.com/acme/api/pull/7"
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(links=Links(approved)))

    edited = desk.edit(change, links=Links("https://github.com/acme/api/pull/99"))

    assert (edited.stage, edited.approvals) == (Stage.APPROVE, ())
    assert desk.last_entry(change, "approvals_withdrawn").entry.details["because"] == ["links"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Links(), Links("https://github.com/acme/api/pull/7")),  # filled in
        (Links("https://github.com/acme/api/pull/7"), Links()),  # taken away: ties nothing
        (
            Links("https://github.com/acme/api/pull/7"),
            Links("https://github.com/acme/api/pull/7", ticket="https://example.com/T-9"),
        ),
    ],
)
def test_linking_a_first_pull_request_or_a_ticket_keeps_the_approvals(
    before: Links, after: Links, desk: Desk
) -> None:
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(links=before))
    edited = desk.edit(change, links=after)
    assert (edited.stage, edited.approvers()) == (Stage.DEPLOY, (ANNA.user_id,))


def test_a_risk_raised_after_approval_asks_the_approvals_a_higher_risk_needs(
    desk: Desk,
) -> None:
    """The approval given stands (nothing it approved changed), but a high-risk change
    needs two: the authorised change goes back to Approve for the second."""
    change = desk.normal_change_in(Stage.DEPLOY, normal_details(risk=Level.LOW))

    edited = desk.edit(change, risk=Level.HIGH)

    assert edited.risk is Level.HIGH
    assert (edited.stage, edited.approvers()) == (Stage.APPROVE, (ANNA.user_id,))
    back = desk.last_entry(change, "returned_to_approve").entry
    assert back.details == {"because": ["risk"]}
    assert desk.approve(change, by=ARTHUR).stage is Stage.DEPLOY


def test_a_risk_raised_after_the_review_is_the_changes_risk(desk: Desk) -> None:
    change = desk.add_evidence(desk.review(desk.request(normal_details(risk=Level.LOW))))
    assert desk.edit(change, risk=Level.HIGH).risk is Level.HIGH


def test_a_material_edit_sends_an_authorised_change_back_for_approval(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    edited = desk.edit(change, services=("api", "billing"))
    assert (edited.stage, edited.approvals) == (Stage.APPROVE, ())
    assert desk.actions(change)[-3:] == ["edited", "approvals_withdrawn", "returned_to_approve"]
    back = desk.last_entry(change, "returned_to_approve").entry
    assert (back.actor, back.from_stage, back.to_stage) == ("system", "deploy", "approve")
    assert back.details == {"because": ["services"]}
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed):
        desk.start_deployment(change)
    assert desk.approve(change, by=ARTHUR).stage is Stage.DEPLOY


def test_a_material_edit_sends_an_authorised_emergency_back_for_approval(desk: Desk) -> None:
    change = desk.approve(desk.request(emergency_details()), by=EMMA)
    assert desk.edit(change, title="Block two abusive clients").stage is Stage.APPROVE
    assert desk.approve(change, by=OSCAR).stage is Stage.DEPLOY


def test_a_non_material_edit_leaves_an_authorised_change_authorised(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    edited = desk.edit(change, impact=Level.HIGH)
    assert (edited.stage, edited.approvers()) == (Stage.DEPLOY, (ANNA.user_id,))


def test_an_approver_made_implementer_no_longer_counts_as_an_approver(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    edited = desk.edit(change, implementer=ANNA.user_id)
    assert (edited.stage, edited.approvers()) == (Stage.APPROVE, ())
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="You implement"):
        desk.approve(change, by=ANNA)


def test_an_edit_keeps_a_standard_changes_procedure_approval(desk: Desk) -> None:
    change = desk.request(standard_details())
    edited = desk.edit(change, title="Restart the API and the worker", services=("api", "worker"))
    assert edited.stage is Stage.DEPLOY
    assert [a.kind for a in edited.approvals] == ["procedure"]
    assert "approvals_withdrawn" not in desk.actions(change)


# -- reclassifying ------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [Stage.REVIEW, Stage.TEST, Stage.APPROVE, Stage.DEPLOY])
def test_reclassifying_a_submitted_change_sends_it_back_to_request(
    stage: Stage, desk: Desk
) -> None:
    change = desk.normal_change_in(stage)
    edited = desk.edit(change, classification=Classification.EMERGENCY)
    assert edited.stage is Stage.REQUEST
    assert (edited.review, edited.test_evidence, edited.approvals) == (None, (), ())
    back = desk.last_entry(change, "returned_to_request").entry
    assert (back.actor, back.from_stage, back.to_stage) == ("system", stage.value, "request")
    assert back.details == {"because": ["classification"]}
    assert "returned_to_approve" not in desk.actions(change)


def test_reclassifying_an_approved_change_records_the_approvals_withdrawn(desk: Desk) -> None:
    change = awaiting_a_second_approval(desk)
    desk.edit(change, classification=Classification.EMERGENCY)
    assert desk.actions(change)[-3:] == ["edited", "approvals_withdrawn", "returned_to_request"]


def test_reclassifying_a_change_still_in_request_keeps_it_there(desk: Desk) -> None:
    change = desk.request(submit=False)
    assert desk.edit(change, classification=Classification.EMERGENCY).stage is Stage.REQUEST
    assert desk.actions(change) == ["requested", "edited"]


def test_a_normal_change_made_standard_is_pre_approved_when_submitted_again(desk: Desk) -> None:
    change = desk.request()
    edited = desk.edit(
        change, classification=Classification.STANDARD, procedure_id="restart-service"
    )
    assert edited.stage is Stage.REQUEST
    assert desk.submit(change).stage is Stage.DEPLOY


def test_a_standard_change_made_normal_loses_its_procedure_approval(desk: Desk) -> None:
    change = desk.request(standard_details())
    edited = desk.edit(
        change,
        classification=Classification.NORMAL,
        procedure_id="",
        description="Restart by hand this time.",
        rollback=Rollback(plan="None needed."),
    )
    assert (edited.stage, edited.approvals, edited.review) == (Stage.REQUEST, (), None)
    change = desk.add_evidence(desk.review(desk.submit(change)))
    assert desk.approve(change).stage is Stage.DEPLOY


# -- what an edit may not do ------------------------------------------------------------


def test_an_edit_that_changes_nothing_writes_nothing(desk: Desk) -> None:
    change = desk.request()
    with nothing_written(desk.uow):
        desk.edit(change, title="  Raise the API connection pool to 50  ")


def test_the_implementer_may_edit_but_an_approver_may_not(desk: Desk) -> None:
    change = desk.request(normal_details(implementer=IVAN.user_id))
    assert desk.edit(change, by=IVAN, impact=Level.MEDIUM).details.impact is Level.MEDIUM
    with nothing_written(desk.uow), pytest.raises(NotAllowed, match="Only the requester"):
        desk.edit(change, by=ANNA, impact=Level.HIGH)


def test_an_edit_is_validated_like_a_request(desk: Desk) -> None:
    change = desk.request()
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.edit(change, title="")
    assert refused.value.field == "title"


def test_a_window_cannot_be_moved_into_the_past(desk: Desk) -> None:
    change = desk.request()
    past = Window(NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    with nothing_written(desk.uow), pytest.raises(ValidationFailed, match="in the past"):
        desk.edit(change, window=past)


def test_a_window_that_has_passed_is_not_held_against_other_edits(desk: Desk) -> None:
    change = desk.request()
    desk.clock.advance(days=3)
    assert desk.edit(change, description="Still needed.").details.description == "Still needed."


def test_a_change_cannot_be_edited_once_its_deployment_started(desk: Desk) -> None:
    change = desk.deploying()
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed, match="has started"):
        desk.edit(change, title="Too late")


def test_a_closed_change_cannot_be_edited(desk: Desk) -> None:
    change = desk.record_outcome(desk.deploying())
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed, match="in Closed"):
        desk.edit(change, title="Too late")


# -- cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stage", [Stage.REQUEST, Stage.REVIEW, Stage.TEST, Stage.APPROVE, Stage.DEPLOY]
)
def test_the_requester_can_cancel_before_deployment_with_a_reason(stage: Stage, desk: Desk) -> None:
    change = desk.normal_change_in(stage)
    desk.clock.advance(minutes=5)
    cancelled = desk.cancel(change, reason="The vendor fixed it upstream.")
    assert cancelled.stage is Stage.CANCELLED
    assert cancelled.cancel_reason == "The vendor fixed it upstream."
    assert cancelled.closed_at == NOW + timedelta(minutes=5)
    entry = desk.last_entry(change, "cancelled").entry
    assert (entry.from_stage, entry.to_stage) == (stage.value, "cancelled")
    assert entry.details == {"reason": "The vendor fixed it upstream."}


@pytest.mark.parametrize("actor", [IVAN, ANNA, GRACE], ids=lambda a: a.user_id)
def test_the_implementer_or_an_approver_can_cancel(actor: Actor, desk: Desk) -> None:
    change = desk.request(normal_details(implementer=IVAN.user_id))
    assert desk.cancel(change, by=actor).stage is Stage.CANCELLED


def test_an_emergency_approver_can_cancel_an_emergency(desk: Desk) -> None:
    assert desk.cancel(desk.request(emergency_details()), by=EMMA).stage is Stage.CANCELLED


@pytest.mark.parametrize("actor", [BOB, PETER], ids=lambda a: a.user_id)
def test_a_bystander_cannot_cancel(actor: Actor, desk: Desk) -> None:
    change = desk.request()
    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.cancel(change, by=actor)
    assert str(refused.value) == (
        "Only the requester, the implementer or an approver can do that to CHG-0001."
    )


def test_cancelling_needs_a_reason(desk: Desk) -> None:
    change = desk.request()
    with nothing_written(desk.uow), pytest.raises(ValidationFailed) as refused:
        desk.cancel(change, reason="")
    assert refused.value.field == "reason"


def test_a_change_cannot_be_cancelled_once_its_deployment_started(desk: Desk) -> None:
    change = desk.deploying()
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.cancel(change)
    assert str(refused.value) == (
        "Can't cancel a change that is in Deploy and verify: its deployment has started. "
        "Record its outcome instead (Rolled back or Failed if it did not go as planned)."
    )


def test_a_cancelled_change_is_final(desk: Desk) -> None:
    change = desk.cancel(desk.request())
    for attempt in (desk.cancel, desk.submit, desk.approve, desk.review):
        with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed, match="in Cancelled"):
            attempt(change)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed, match="in Cancelled"):
        desk.edit(change, title="Revived")


def test_the_reviewer_cannot_be_made_the_implementer(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.APPROVE)  # Peter reviewed it
    assert change.review is not None and change.review.by == PETER.user_id

    with pytest.raises(ValidationFailed) as refused, nothing_written(desk.uow):
        desk.edit(change, implementer=PETER.user_id)

    assert refused.value.field == "implementer"
    assert "reviewed this change, so someone else implements it" in refused.value.reason
    assert desk.edit(change, implementer=IVAN.user_id).details.implementer == IVAN.user_id


def test_a_broken_glass_change_made_normal_owes_no_retrospective_approval(desk: Desk) -> None:
    change = desk.request(emergency_details())
    desk.clock.advance(minutes=20)
    change = desk.break_glass(change, reason="Nobody answered.")
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, change) is not None

    change = desk.edit(
        change,
        classification=Classification.NORMAL,
        description="It was a Normal change after all.",
        services=("api",),
        rollback=Rollback(plan="Revert."),
        window=TOMORROW,
    )

    assert change.stage is Stage.REQUEST
    assert not change.retro_approval_owed
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, change) is None
