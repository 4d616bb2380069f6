"""Break-glass: when no approver acts in time, the requester of an emergency goes ahead alone —
loudly recorded, and owing an approval in retrospect before the change can close."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    BOB,
    EMMA,
    IVAN,
    NOW,
    OSCAR,
    PETER,
    TOMORROW,
    Desk,
    a_policy,
    emergency_details,
    normal_details,
    nothing_written,
)
from workflows.chase import Obligation, Owed
from workflows.errors import NotAllowed, TransitionNotAllowed
from workflows.gate import Asked, Question, Target, ask
from workflows.model import (
    SYSTEM,
    Actor,
    Change,
    Classification,
    GateStatus,
    Outcome,
    Rollback,
    Stage,
    Window,
)
from workflows.stages import Action, Attempt, allowed_actions, available_actions, move_for

RULES = 'approver_users = ["UEMMA"]\napprover_groups = ["SONCALL"]\n'
WAIT = timedelta(minutes=15)  # the test policy's break_glass_after, by default


def an_emergency(desk: Desk, **fields: object) -> Change:
    return desk.request(emergency_details(**fields))


def broken_glass(desk: Desk, **fields: object) -> Change:
    """An emergency nobody approved within the wait, deployed by its requester alone."""
    change = an_emergency(desk, **fields)
    desk.clock.advance(minutes=20)
    return desk.break_glass(change, reason="Nobody answered; the API is down.")


# -- when it opens ------------------------------------------------------------------------


def test_break_glass_is_refused_until_the_policys_wait_has_passed(desk: Desk) -> None:
    change = an_emergency(desk)
    desk.clock.advance(minutes=14, seconds=59)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.break_glass(change)
    assert refused.value.reason == (
        "Break-glass opens at 09:15:00 UTC, 15 min after CHG-0001 was submitted, if no approver "
        "has acted by then; the approvers have been asked."
    )


def test_the_break_glass_button_is_offered_only_once_break_glass_opens(desk: Desk) -> None:
    change = desk.stored(an_emergency(desk))

    before = available_actions(change, desk.policy, NOW + WAIT - timedelta(seconds=1))
    after = available_actions(change, desk.policy, NOW + WAIT)

    assert Action.BREAK_GLASS not in before
    assert Action.BREAK_GLASS in after
    assert Action.BREAK_GLASS not in available_actions(change, desk.policy)  # no time: no button


def test_break_glass_opens_once_the_wait_has_passed(desk: Desk) -> None:
    change = an_emergency(desk)
    desk.clock.advance(minutes=15)
    broken = desk.break_glass(change, reason="Nobody answered.")
    assert broken.stage is Stage.DEPLOY
    assert (broken.break_glass_at, broken.break_glass_reason) == (NOW + WAIT, "Nobody answered.")
    assert broken.retro_approval_owed


def test_the_wait_counts_from_submission_not_from_the_request(desk: Desk) -> None:
    change = desk.request(emergency_details(), submit=False)
    desk.clock.advance(hours=1)
    desk.submit(change)
    desk.clock.advance(minutes=14)
    with (
        nothing_written(desk.uow),
        pytest.raises(TransitionNotAllowed, match="opens at 10:15:00 UTC"),
    ):
        desk.break_glass(change)
    desk.clock.advance(minutes=1)
    assert desk.break_glass(change).stage is Stage.DEPLOY


def test_the_wait_starts_again_when_an_edit_withdraws_the_approvals(desk: Desk) -> None:
    change = desk.request(emergency_details())
    desk.clock.advance(minutes=2)
    change = desk.approve(change, by=EMMA)  # an approver acted within the wait
    desk.clock.advance(minutes=14)
    change = desk.edit(change, title="Block the abusive client and drop its cache")
    assert change.approvers() == ()  # withdrawn: the approvers are asked anew

    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.break_glass(change, reason="Going alone.")
    assert "15 min after its approvals were withdrawn" in str(refused.value)

    desk.clock.advance(minutes=15)
    assert desk.break_glass(change, reason="Nobody answered.").stage is Stage.DEPLOY


def test_the_wait_counts_from_a_resubmission_after_an_old_withdrawal(desk: Desk) -> None:
    """Approvals withdrawn long ago, then the change rejected and submitted again: the
    approvers are asked afresh from the resubmission, not from the withdrawal."""
    change = desk.request(emergency_details())
    change = desk.approve(change, by=EMMA)
    desk.edit(change, title="Block the abusive client and drop its cache")  # withdrawn
    desk.clock.advance(hours=2)
    change = desk.reject(change, by=EMMA, reason="Say which client.")
    desk.submit(change)

    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.break_glass(change, reason="Going alone.")
    assert "15 min after CHG-0001 was submitted" in str(refused.value)


def test_the_policy_sets_how_long_to_wait(desk: Desk) -> None:
    desk.policy = a_policy(emergency=RULES + 'break_glass_after = "90s"')
    change = an_emergency(desk)
    desk.clock.advance(seconds=89)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed, match="1 min after"):
        desk.break_glass(change)
    desk.clock.advance(seconds=1)
    assert desk.break_glass(change).stage is Stage.DEPLOY


@pytest.mark.parametrize("stage", [Stage.REVIEW, Stage.TEST, Stage.APPROVE])
def test_break_glass_opens_from_any_stage_before_deploy(stage: Stage, desk: Desk) -> None:
    change = an_emergency(desk)
    if stage is not Stage.REVIEW:
        change = desk.review(change)
    if stage is Stage.APPROVE:
        change = desk.add_evidence(change)
    assert change.stage is stage
    desk.clock.advance(minutes=15)
    assert desk.break_glass(change).stage is Stage.DEPLOY


# -- who, and for what ----------------------------------------------------------------------


def test_the_implementer_may_break_glass(desk: Desk) -> None:
    change = an_emergency(desk, implementer=IVAN.user_id)
    desk.clock.advance(minutes=15)
    assert desk.break_glass(change, by=IVAN).stage is Stage.DEPLOY


@pytest.mark.parametrize("who", [EMMA, ANNA, PETER, BOB])
def test_only_the_requester_or_implementer_may_break_glass(who: Actor, desk: Desk) -> None:
    change = an_emergency(desk)
    desk.clock.advance(hours=1)
    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.break_glass(change, by=who)
    assert str(refused.value) == "Only the requester or the implementer of CHG-0001 can do that."


def test_only_an_emergency_change_may_break_glass(desk: Desk) -> None:
    change = desk.request(normal_details())
    desk.clock.advance(hours=1)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.break_glass(change)
    assert refused.value.reason == "only an Emergency change may break glass."


def test_a_policy_that_forbids_break_glass_is_obeyed(desk: Desk) -> None:
    desk.policy = a_policy(emergency=RULES + "break_glass_allowed = false")
    change = an_emergency(desk)
    desk.clock.advance(hours=1)
    assert Action.BREAK_GLASS not in available_actions(desk.stored(change), desk.policy)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.break_glass(change)
    assert refused.value.reason == "the change policy does not allow break-glass."


def test_glass_once_broken_cannot_be_broken_again(desk: Desk) -> None:
    broken = broken_glass(desk)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed):
        desk.break_glass(broken)


# -- loudly recorded, with an approval owed ------------------------------------------------


def test_break_glass_is_loudly_recorded_in_the_audit_trail(desk: Desk) -> None:
    broken = broken_glass(desk)
    assert desk.actions(broken) == ["requested", "submitted", "break_glass"]
    entry = desk.last_entry(broken, "break_glass").entry
    assert (entry.actor, entry.at) == (ALICE.user_id, NOW + timedelta(minutes=20))
    assert (entry.from_stage, entry.to_stage) == ("review", "deploy")
    assert entry.details == {
        "reason": "Nobody answered; the API is down.",
        "waited_seconds": 1200,
        "approvals_at_the_time": 0,
        "retrospective_approval_owed": True,
    }


def test_break_glass_records_the_approvals_it_went_ahead_without(desk: Desk) -> None:
    desk.policy = a_policy(approvals="emergency = 2", emergency=RULES)
    change = desk.approve(an_emergency(desk), by=EMMA)
    assert change.stage is Stage.APPROVE
    desk.clock.advance(minutes=30)
    desk.break_glass(change)
    assert desk.last_entry(change, "break_glass").entry.details["approvals_at_the_time"] == 1


def test_break_glass_stands_in_for_the_review_and_test_it_skipped(desk: Desk) -> None:
    broken = broken_glass(desk)
    assert broken.review is not None
    assert (broken.review.by, broken.review.kind) == (ALICE.user_id, "break_glass")
    assert [(e.by, e.kind) for e in broken.test_evidence] == [(ALICE.user_id, "compressed")]
    assert broken.approvers() == ()


def test_a_peer_review_given_before_break_glass_is_kept(desk: Desk) -> None:
    change = desk.review(an_emergency(desk))
    desk.clock.advance(minutes=15)
    broken = desk.break_glass(change)
    assert broken.review is not None and (broken.review.by, broken.review.kind) == (
        PETER.user_id,
        "peer",
    )


def test_break_glass_opens_a_retrospective_approval_chased_like_the_review(desk: Desk) -> None:
    broken = broken_glass(desk)
    at = NOW + timedelta(minutes=20)
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, broken) == Obligation(
        Owed.RETROSPECTIVE_APPROVAL,
        ALICE.user_id,
        deadline=at + timedelta(hours=48),
        next_at=at + timedelta(hours=12),
        number=broken.number,
    )


# -- the retrospective approval -------------------------------------------------------------


def test_a_broken_glass_change_cannot_close_until_it_is_approved_in_retrospect(
    desk: Desk,
) -> None:
    broken = desk.start_deployment(broken_glass(desk))
    reviewed = desk.submit_post_change_review(desk.record_outcome(broken))
    assert (reviewed.stage, reviewed.review_owed, reviewed.retro_approval_owed) == (
        Stage.DEPLOY,
        False,
        True,
    )
    with pytest.raises(TransitionNotAllowed) as refused:
        move_for(desk.stored(broken), Action.CLOSE, Attempt(Actor(SYSTEM), desk.policy))
    assert refused.value.reason == "a retrospective approval is still owed."
    desk.clock.advance(hours=3)
    closed = desk.approve(reviewed, by=EMMA, comment="Right call.")
    assert (closed.stage, closed.retro_approval_owed) == (Stage.CLOSED, False)
    assert closed.closed_at == desk.clock.now()
    assert desk.uow.obligations.committed == {}
    approved = desk.last_entry(broken, "approved").entry
    assert (approved.from_stage, approved.to_stage) == ("deploy", "deploy")
    assert approved.details == {"comment": "Right call.", "retrospective": True}
    assert desk.actions(broken)[-2:] == ["approved", "closed"]


def test_the_retrospective_approval_may_come_before_the_post_change_review(desk: Desk) -> None:
    broken = desk.record_outcome(desk.start_deployment(broken_glass(desk)))
    approved = desk.approve(broken, by=OSCAR)
    assert (approved.stage, approved.retro_approval_owed) == (Stage.DEPLOY, False)
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, broken) is None
    assert desk.owed(Owed.POST_CHANGE_REVIEW, broken) is not None
    assert desk.submit_post_change_review(broken).stage is Stage.CLOSED
    assert desk.actions(broken)[-3:] == ["approved", "post_change_review_submitted", "closed"]


def test_a_retrospective_approval_before_the_outcome_waits_for_the_outcome(desk: Desk) -> None:
    broken = desk.approve(broken_glass(desk), by=EMMA)
    assert (broken.stage, broken.retro_approval_owed) == (Stage.DEPLOY, False)
    assert "closed" not in desk.actions(broken)
    owing = desk.record_outcome(desk.start_deployment(broken))
    assert (owing.stage, owing.review_owed) == (Stage.DEPLOY, True)


@pytest.mark.parametrize("who", [ALICE, ANNA, PETER, BOB])
def test_only_an_emergency_approver_other_than_the_requester_approves_in_retrospect(
    who: Actor, desk: Desk
) -> None:
    broken = desk.record_outcome(desk.start_deployment(broken_glass(desk)))
    with nothing_written(desk.uow), pytest.raises(NotAllowed):
        desk.approve(broken, by=who)


def test_whoever_broke_glass_cannot_approve_it_even_once_no_longer_in_charge(
    desk: Desk,
) -> None:
    """An emergency approver who implemented it and broke glass, then handed it on."""
    change = an_emergency(desk, implementer=EMMA.user_id)
    desk.clock.advance(minutes=20)
    change = desk.break_glass(change, by=EMMA, reason="Nobody answered.")
    desk.edit(change, implementer=IVAN.user_id)

    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.approve(change, by=EMMA)
    assert str(refused.value.reason) == "You broke glass on CHG-0001: someone else must approve it."
    assert desk.approve(change, by=OSCAR).retro_approval_owed is False


def test_an_approval_given_in_retrospect_is_not_asked_for_twice(desk: Desk) -> None:
    broken = desk.approve(broken_glass(desk), by=EMMA)
    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.approve(broken, by=OSCAR)
    assert refused.value.reason == "it needs no approval now."


def test_filling_in_the_missing_details_after_break_glass_keeps_the_change_in_deploy(
    desk: Desk,
) -> None:
    broken = broken_glass(desk)
    edited = desk.edit(
        broken, description="A client floods the API.", rollback=Rollback(plan="Drop the rule.")
    )
    assert (edited.stage, edited.retro_approval_owed) == (Stage.DEPLOY, True)
    assert "returned_to_approve" not in desk.actions(broken)
    assert desk.start_deployment(edited).deployment_started_at is not None


def test_cancelling_a_broken_glass_change_before_deploying_stops_its_chase(desk: Desk) -> None:
    broken = broken_glass(desk)
    cancelled = desk.cancel(broken, reason="The incident resolved itself.")
    assert cancelled.stage is Stage.CANCELLED
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, broken) is None


def allowed_by_the_gate(desk: Desk, change: Change) -> Change:
    """A pipeline asked the gate to deploy the change, and the gate allowed it."""
    question = Question(change.number, Target("api", "production"), Asked("ci-prod"))
    answer = ask(desk.uow, desk.clock, desk.policy, question)
    assert answer.decision.status is GateStatus.ALLOWED
    return desk.stored(change)


def test_a_broken_glass_change_the_gate_let_deploy_cannot_be_cancelled(desk: Desk) -> None:
    """No start reported, but a pipeline may have deployed it: a cancellation would erase the
    approval owed in retrospect."""
    allowed = allowed_by_the_gate(desk, broken_glass(desk))
    assert Action.CANCEL not in available_actions(allowed, desk.policy)

    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.cancel(allowed, by=EMMA, reason="The incident resolved itself.")

    assert str(refused.value) == (
        "Can't cancel a change that is in Deploy and verify: the gate allowed ci-prod to "
        "deploy api to production under break-glass, so it may already be deployed. Start its "
        "deployment and record its outcome instead (Rolled back or Failed if it did not go "
        "ahead): its approval stays owed in retrospect."
    )
    assert desk.stored(allowed).retro_approval_owed
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, allowed) is not None


def test_a_broken_glass_change_the_gate_let_deploy_is_rolled_back_still_owing_approval(
    desk: Desk,
) -> None:
    allowed = allowed_by_the_gate(desk, broken_glass(desk))
    rolled_back = desk.record_outcome(desk.start_deployment(allowed), Outcome.ROLLED_BACK)
    assert (rolled_back.retro_approval_owed, rolled_back.review_owed) == (True, True)
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, allowed) is not None


def test_a_gate_still_holding_a_broken_glass_change_does_not_stop_its_cancellation(
    desk: Desk,
) -> None:
    """Before its window opens the gate holds even a break-glass change: nothing went out."""
    broken = broken_glass(desk, window=TOMORROW)
    question = Question(broken.number, Target("api", "production"), Asked("ci-prod"))
    assert ask(desk.uow, desk.clock, desk.policy, question).decision.status is GateStatus.AWAITING
    cancelled = desk.cancel(broken, reason="The incident resolved itself.")
    assert cancelled.stage is Stage.CANCELLED
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, broken) is None


def test_closing_without_the_review_stops_the_chase_of_the_retrospective_approval_too(
    desk: Desk,
) -> None:
    broken = desk.record_outcome(desk.start_deployment(broken_glass(desk)), Outcome.FAILED)
    closed = desk.close_without_review(broken, by=EMMA, reason="Superseded by CHG-0002.")
    assert closed.stage is Stage.CLOSED
    assert desk.uow.obligations.committed == {}


def test_a_cancelled_broken_glass_change_no_longer_owes_an_approval(desk: Desk) -> None:
    cancelled = desk.cancel(broken_glass(desk), reason="The incident resolved itself.")
    assert desk.stored(cancelled).retro_approval_owed is False


def test_a_broken_glass_change_closed_without_review_no_longer_owes_an_approval(
    desk: Desk,
) -> None:
    broken = desk.record_outcome(desk.start_deployment(broken_glass(desk)), Outcome.FAILED)
    closed = desk.close_without_review(broken, by=EMMA, reason="Superseded by CHG-0002.")
    assert desk.stored(closed).retro_approval_owed is False


def test_a_later_answer_of_the_gate_does_not_reopen_the_cancellation(desk: Desk) -> None:
    """The card keeps the gate's latest answer to each pipeline; the first `allowed` is kept
    apart, so the window closing (the gate then prevents) leaves it past cancelling."""
    window = Window(NOW, NOW + timedelta(hours=1))
    allowed = allowed_by_the_gate(desk, broken_glass(desk, window=window))
    desk.clock.advance(hours=2)
    question = Question(allowed.number, Target("api", "production"), Asked("ci-prod"))
    later = ask(desk.uow, desk.clock, desk.policy, question)
    assert later.decision.status is GateStatus.PREVENTED
    stored = desk.stored(allowed)
    assert all(c.status is not GateStatus.ALLOWED for c in stored.gate_checks)

    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.cancel(stored, by=EMMA, reason="The incident resolved itself.")

    assert "the gate allowed ci-prod to deploy api to production" in str(refused.value)
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, allowed) is not None


def test_a_broken_glass_change_the_gate_let_deploy_keeps_its_class(desk: Desk) -> None:
    """Reclassifying would settle the approval owed in retrospect, as cancelling would."""
    allowed = allowed_by_the_gate(desk, broken_glass(desk))

    with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed) as refused:
        desk.edit(
            allowed,
            classification=Classification.NORMAL,
            description="Raise the API's memory limit.",
            services=("api",),
            rollback=Rollback(plan="Lower it again."),
            window=TOMORROW,
        )

    assert str(refused.value) == (
        "Can't return to Request a change that is in Deploy and verify: the gate allowed "
        "ci-prod to deploy api to production under break-glass, so it may already be "
        "deployed, and its approval stays owed in retrospect. Keep its class, and edit "
        "anything else."
    )
    assert desk.stored(allowed).retro_approval_owed
    edited = desk.edit(allowed, description="The API's pods ran out of memory.")
    assert (edited.stage, edited.retro_approval_owed) == (Stage.DEPLOY, True)


def test_an_answer_allowed_before_the_glass_was_broken_leaves_cancelling_to_an_approver(
    desk: Desk,
) -> None:
    """Allowed as a Normal change, then made an emergency that broke glass: nothing was allowed
    under break-glass, but what the gate allowed before may have gone out all the same."""
    open_now = Window(NOW, NOW + timedelta(hours=4))
    normal = desk.normal_change_in(Stage.DEPLOY, normal_details(window=open_now))
    allowed_by_the_gate(desk, normal)
    emergency = desk.submit(desk.edit(normal, classification=Classification.EMERGENCY))
    desk.clock.advance(minutes=20)
    broken = desk.break_glass(emergency, reason="Nobody answered; the API is down.")

    with nothing_written(desk.uow), pytest.raises(NotAllowed) as refused:
        desk.cancel(broken, reason="The incident resolved itself.")
    assert str(refused.value.reason).startswith(
        "The gate allowed ci-prod to deploy api to production, so CHG-0001 may have been "
        "deployed: only an approver other than its requester and implementer can cancel it"
    )

    cancelled = desk.cancel(broken, by=OSCAR, reason="The run was stopped before deploying.")
    assert cancelled.stage is Stage.CANCELLED
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, broken) is None


def test_a_broken_glass_change_reclassified_then_allowed_is_cancelled_by_an_approver_only(
    desk: Desk,
) -> None:
    """Reclassified before any pipeline went ahead, it owes nothing in retrospect; once the
    gate allows it as a Normal change, it may be out, as any allowed change may."""
    broken = broken_glass(desk, window=Window(NOW, NOW + timedelta(hours=4)))
    normal = desk.edit(
        broken,
        classification=Classification.NORMAL,
        description="Raise the API's memory limit.",
        services=("api",),
        rollback=Rollback(plan="Lower it again."),
    )
    assert not normal.retro_approval_owed
    authorised = desk.approve(desk.add_evidence(desk.review(desk.submit(normal))))
    assert Action.CANCEL in allowed_actions(authorised, ALICE, desk.policy)
    allowed = allowed_by_the_gate(desk, authorised)

    assert Action.CANCEL not in allowed_actions(allowed, ALICE, desk.policy)
    assert Action.CANCEL in allowed_actions(allowed, ANNA, desk.policy)
    assert desk.owed(Owed.RETROSPECTIVE_APPROVAL, allowed) is None
