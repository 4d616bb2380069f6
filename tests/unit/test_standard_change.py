"""A Standard change: a catalog procedure stands for review, test and approval."""

from __future__ import annotations

import pytest

from tests.unit.builders import ANNA, PETER, Desk, nothing_written, standard_details
from workflows.errors import PolicyViolation, TransitionNotAllowed
from workflows.model import SYSTEM, Actor, Outcome, Stage

CITED = {
    "procedure": "restart-service",
    "version": "3",
    "runbook": "https://example.com/runbooks/restart",
}


def test_a_standard_change_is_ready_to_deploy_as_soon_as_it_is_requested(desk: Desk) -> None:
    change = desk.request(standard_details())
    assert change.stage is Stage.DEPLOY
    assert desk.actions(change) == [
        "requested",
        "submitted",
        "satisfied_by_procedure",
        "satisfied_by_procedure",
        "satisfied_by_procedure",
    ]


def test_review_test_and_approval_are_each_recorded_as_satisfied_by_the_procedure(
    desk: Desk,
) -> None:
    change = desk.request(standard_details())
    satisfied = [e.entry for e in desk.trail(change) if e.entry.action == "satisfied_by_procedure"]
    assert [(e.from_stage, e.to_stage) for e in satisfied] == [
        ("review", "test"),
        ("test", "approve"),
        ("approve", "deploy"),
    ]
    assert [e.details for e in satisfied] == [
        {"satisfies": "review", **CITED},
        {"satisfies": "test", **CITED},
        {"satisfies": "approval", **CITED},
    ]
    assert {e.actor for e in satisfied} == {SYSTEM}


def test_the_change_carries_the_procedure_as_its_review_evidence_and_approval(
    desk: Desk,
) -> None:
    change = desk.request(standard_details())
    assert change.review is not None and change.review.kind == "procedure"
    assert [e.kind for e in change.test_evidence] == ["procedure"]
    assert [(a.by, a.kind, a.comment) for a in change.approvals] == [
        (SYSTEM, "procedure", "Rolling restart of a stateless service (v3)")
    ]
    assert change.approvers() == ()


def test_a_standard_change_outside_the_catalog_is_refused_with_choose_normal(
    desk: Desk,
) -> None:
    with nothing_written(desk.uow), pytest.raises(PolicyViolation) as refused:
        desk.request(standard_details(procedure_id="resize-the-database"))
    assert str(refused.value) == (
        "resize-the-database is not a pre-approved procedure in the Standard change catalog: "
        "choose Normal, so it is reviewed, tested and approved."
    )


def test_a_standard_change_that_names_no_procedure_is_refused(desk: Desk) -> None:
    with nothing_written(desk.uow), pytest.raises(PolicyViolation, match=r"^This change is not"):
        desk.request(standard_details(procedure_id=""))


def test_a_procedure_withdrawn_from_the_catalog_no_longer_pre_approves(desk: Desk) -> None:
    change = desk.request(standard_details(), submit=False)
    desk.policy = desk.policy.model_copy(update={"catalog": ()})
    with nothing_written(desk.uow), pytest.raises(PolicyViolation, match="choose Normal"):
        desk.submit(change)


def test_a_standard_change_is_deployed_and_closes_on_success(desk: Desk) -> None:
    change = desk.start_deployment(desk.request(standard_details()))
    assert desk.record_outcome(change).stage is Stage.CLOSED


def test_a_failed_standard_change_owes_a_post_change_review(desk: Desk) -> None:
    change = desk.start_deployment(desk.request(standard_details()))
    owing = desk.record_outcome(change, Outcome.FAILED)
    assert (owing.stage, owing.review_owed, owing.owed_documents) == (Stage.DEPLOY, True, ())
    assert desk.submit_post_change_review(change).stage is Stage.CLOSED


@pytest.mark.parametrize(
    ("use", "by"),
    [("review", PETER), ("approve", ANNA), ("reject", ANNA), ("add_evidence", PETER)],
)
def test_people_do_not_review_test_approve_or_reject_a_standard_change(
    use: str, by: Actor, desk: Desk
) -> None:
    change = desk.request(standard_details())
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed):
        getattr(desk, use)(change, by=by)
