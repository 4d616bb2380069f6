"""The transition table itself: every move, every guard, every pair that is not a move."""

from __future__ import annotations

from datetime import timedelta

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
    a_change,
)
from workflows.errors import NotAllowed, TransitionNotAllowed
from workflows.model import (
    SYSTEM,
    Actor,
    Approval,
    Change,
    Classification,
    Level,
    Outcome,
    PeerReview,
    Stage,
)
from workflows.policy import Policy
from workflows.stages import (
    MOVES,
    SYSTEM_ACTIONS,
    TABLE,
    Action,
    Attempt,
    is_emergency,
    is_standard,
    move_for,
    not_standard,
    reachable_stages,
)

S, A, C = Stage, Action, Classification
ALL = frozenset(C)
BY_PEOPLE = frozenset({C.NORMAL, C.EMERGENCY})  # reviewed, tested and approved by people
STANDARD = frozenset({C.STANDARD})
EMERGENCY = frozenset({C.EMERGENCY})
OPEN = (S.REQUEST, S.REVIEW, S.TEST, S.APPROVE, S.DEPLOY)

#: The process as the policy describes it: (stage, action) -> (next stage, classifications).
EXPECTED = {
    (S.REQUEST, A.SUBMIT): (S.REVIEW, ALL),
    (S.REVIEW, A.RECORD_REVIEW): (S.TEST, BY_PEOPLE),
    (S.TEST, A.ADD_TEST_EVIDENCE): (S.APPROVE, BY_PEOPLE),
    (S.APPROVE, A.APPROVE): (S.APPROVE, BY_PEOPLE),
    (S.APPROVE, A.AUTHORISE): (S.DEPLOY, ALL),
    (S.DEPLOY, A.RETURN_TO_APPROVE): (S.APPROVE, ALL),
    (S.REVIEW, A.APPROVE): (S.APPROVE, EMERGENCY),
    (S.TEST, A.APPROVE): (S.APPROVE, EMERGENCY),
    (S.REVIEW, A.SATISFY_BY_PROCEDURE): (S.TEST, STANDARD),
    (S.TEST, A.SATISFY_BY_PROCEDURE): (S.APPROVE, STANDARD),
    (S.APPROVE, A.SATISFY_BY_PROCEDURE): (S.DEPLOY, STANDARD),
    (S.REVIEW, A.REJECT): (S.REQUEST, BY_PEOPLE),
    (S.APPROVE, A.REJECT): (S.REQUEST, BY_PEOPLE),
    (S.DEPLOY, A.START_DEPLOYMENT): (S.DEPLOY, ALL),
    (S.DEPLOY, A.RECORD_OUTCOME): (S.DEPLOY, ALL),
    (S.DEPLOY, A.SUBMIT_POST_CHANGE_REVIEW): (S.DEPLOY, ALL),
    (S.DEPLOY, A.CLOSE): (S.CLOSED, ALL),
    (S.DEPLOY, A.CLOSE_WITHOUT_REVIEW): (S.CLOSED, ALL),
    (S.DEPLOY, A.APPROVE): (S.DEPLOY, ALL),
    **{(s, A.BREAK_GLASS): (S.DEPLOY, EMERGENCY) for s in (S.REVIEW, S.TEST, S.APPROVE)},
    **{(s, A.EDIT): (s, ALL) for s in OPEN},
    **{(s, A.RETURN_TO_REQUEST): (S.REQUEST, ALL) for s in OPEN[1:]},
    **{(s, A.CANCEL): (S.CANCELLED, ALL) for s in OPEN},
}


def ready(stage: Stage, action: Action, classification: Classification) -> Change:
    """A change in `stage` whose state lets `action` go ahead, if its classification does."""
    change = a_change(classification, stage)
    if stage in (S.TEST, S.APPROVE, S.DEPLOY):
        change.review = PeerReview(PETER.user_id, NOW, "Fine.", Level.LOW)
    if action is A.AUTHORISE:
        change.approvals = (Approval(ANNA.user_id, NOW),)
    if action in (A.RECORD_OUTCOME, A.SUBMIT_POST_CHANGE_REVIEW, A.CLOSE, A.CLOSE_WITHOUT_REVIEW):
        change.deployment_started_at = NOW
    if action in (A.SUBMIT_POST_CHANGE_REVIEW, A.CLOSE_WITHOUT_REVIEW):
        change.outcome, change.review_owed = Outcome.FAILED, True
    if stage is S.DEPLOY and action is A.APPROVE:
        change.deployment_started_at, change.retro_approval_owed = NOW, True
    if action is A.CLOSE:
        change.outcome = Outcome.SUCCESSFUL
    return change


def mover(action: Action, classification: Classification) -> Actor:
    """Someone who may take the action, so only the change's state is on trial."""
    if action in SYSTEM_ACTIONS or action is A.CLOSE:
        return Actor(SYSTEM)
    if action in (A.APPROVE, A.REJECT, A.CLOSE_WITHOUT_REVIEW):
        return EMMA if classification is C.EMERGENCY else ANNA
    if action in (A.RECORD_REVIEW, A.ADD_TEST_EVIDENCE):
        return PETER
    return ALICE


def refusal(change: Change, action: Action, actor: Actor, policy: Policy) -> str:
    with pytest.raises((TransitionNotAllowed, NotAllowed)) as refused:
        move_for(change, action, Attempt(actor, policy))
    return str(refused.value)


# -- the table ----------------------------------------------------------------------------


def test_the_table_holds_exactly_the_moves_of_the_process() -> None:
    assert len(MOVES) == len(TABLE)
    assert {key: move.target for key, move in TABLE.items()} == {
        key: target for key, (target, _) in EXPECTED.items()
    }


@pytest.mark.parametrize(("stage", "action"), list(EXPECTED))
def test_each_move_is_open_to_exactly_the_classifications_it_serves(
    stage: Stage, action: Action, policy: Policy
) -> None:
    target, classifications = EXPECTED[(stage, action)]
    for classification in C:
        change = ready(stage, action, classification)
        # Break-glass waits for the approvers: try it long after the change was submitted.
        later = NOW + timedelta(days=1) if action is A.BREAK_GLASS else None
        attempt = Attempt(mover(action, classification), policy, later)
        if classification in classifications:
            assert move_for(change, action, attempt).target is target, classification
        else:
            with pytest.raises(TransitionNotAllowed) as refused:
                move_for(change, action, attempt)
            prefix = f"Can't {action.verb} a change that is in {stage.label}: "
            assert str(refused.value).startswith(prefix), classification
            assert refused.value.reason, classification


@pytest.mark.parametrize("stage", list(Stage))
def test_an_action_with_no_move_from_the_stage_is_refused_naming_both(
    stage: Stage, policy: Policy
) -> None:
    for action in Action:
        if (stage, action) in TABLE:
            continue
        with pytest.raises(TransitionNotAllowed) as refused:
            move_for(a_change(stage=stage), action, Attempt(ALICE, policy))
        assert str(refused.value) == f"Can't {action.verb} a change that is in {stage.label}."
        assert (refused.value.action, refused.value.stage) == (action.verb, stage.label)


def test_approving_a_change_in_request_is_refused_in_plain_words(policy: Policy) -> None:
    assert (
        refusal(a_change(), A.APPROVE, ANNA, policy) == "Can't approve a change that is in Request."
    )


# -- reachability -------------------------------------------------------------------------


def test_every_stage_is_reachable_from_request() -> None:
    assert reachable_stages() == set(Stage)


@pytest.mark.parametrize("stage", [s for s in Stage if not s.is_final])
def test_every_open_stage_can_reach_closed_and_cancelled(stage: Stage) -> None:
    assert {S.CLOSED, S.CANCELLED} <= reachable_stages(stage)


def test_no_move_leaves_a_final_stage() -> None:
    assert [m for m in MOVES if m.source.is_final] == []
    assert reachable_stages(S.CLOSED) == {S.CLOSED}
    assert reachable_stages(S.CANCELLED) == {S.CANCELLED}


@pytest.mark.parametrize("classification", list(C))
def test_a_change_of_each_classification_can_reach_every_stage_and_finish(
    classification: Classification, policy: Policy
) -> None:
    change, attempt = a_change(classification), Attempt(ALICE, policy)
    classifying = (is_standard, not_standard, is_emergency)
    its_moves = [
        m
        for m in MOVES
        if all(guard(change, attempt) is None for guard in m.when if guard in classifying)
    ]

    def reach(start: Stage) -> set[Stage]:
        seen, frontier = {start}, [start]
        while frontier:
            stage = frontier.pop()
            for move in its_moves:
                if move.source is stage and move.target not in seen:
                    seen.add(move.target)
                    frontier.append(move.target)
        return seen

    assert reach(S.REQUEST) == set(Stage)
    for stage in OPEN:
        assert S.CLOSED in reach(stage)


# -- when: guards about the change --------------------------------------------------------


def test_a_standard_change_is_not_reviewed_tested_or_approved_by_people(policy: Policy) -> None:
    for stage, action, actor in [
        (S.REVIEW, A.RECORD_REVIEW, PETER),
        (S.TEST, A.ADD_TEST_EVIDENCE, PETER),
        (S.APPROVE, A.APPROVE, ANNA),
        (S.REVIEW, A.REJECT, ANNA),
    ]:
        message = refusal(a_change(C.STANDARD, stage), action, actor, policy)
        assert "Standard change is reviewed, tested and approved by its catalog procedure" in (
            message
        )


def test_only_a_standard_change_is_pre_approved_by_a_procedure(policy: Policy) -> None:
    message = refusal(a_change(C.NORMAL, S.REVIEW), A.SATISFY_BY_PROCEDURE, Actor(SYSTEM), policy)
    assert "only a Standard change is pre-approved by a catalog procedure" in message


def test_only_an_emergency_change_is_approved_before_its_review_and_test(policy: Policy) -> None:
    for stage in (S.REVIEW, S.TEST):
        message = refusal(a_change(C.NORMAL, stage), A.APPROVE, ANNA, policy)
        assert message == (
            f"Can't approve a change that is in {stage.label}: "
            "only an Emergency change compresses review and test into its approval."
        )


@pytest.mark.parametrize("stage", [S.REVIEW, S.TEST, S.APPROVE])
def test_a_procedure_missing_from_the_catalog_cannot_stand_for_the_change(
    stage: Stage, policy: Policy
) -> None:
    change = a_change(C.STANDARD, stage)
    change.details = change.details.with_changes(procedure_id="reboot-the-world")
    message = refusal(change, A.SATISFY_BY_PROCEDURE, Actor(SYSTEM), policy)
    assert message.endswith(
        "reboot-the-world is not in the Standard change catalog; choose Normal."
    )


def test_authorisation_waits_for_every_approval_a_high_risk_change_needs(policy: Policy) -> None:
    change = a_change(C.NORMAL, S.APPROVE)
    change.review = PeerReview(PETER.user_id, NOW, "Risky.", Level.HIGH)
    change.approvals = (Approval(ANNA.user_id, NOW),)
    assert refusal(change, A.AUTHORISE, Actor(SYSTEM), policy) == (
        "Can't authorise deployment of a change that is in Approve: "
        "it has 1 of the 2 approvals it needs."
    )
    change.approvals += (Approval(ARTHUR.user_id, NOW),)
    assert move_for(change, A.AUTHORISE, Attempt(Actor(SYSTEM), policy)).target is S.DEPLOY


def test_a_procedure_approval_does_not_count_towards_a_quorum_of_people(policy: Policy) -> None:
    change = a_change(C.NORMAL, S.APPROVE)
    change.approvals = (Approval(SYSTEM, NOW, "Rolling restart (v3)", kind="procedure"),)
    assert "it has 0 of the 1 approvals it needs." in refusal(
        change, A.AUTHORISE, Actor(SYSTEM), policy
    )


def test_a_standard_change_needs_no_approval_from_a_person(policy: Policy) -> None:
    change = a_change(C.STANDARD, S.APPROVE)
    assert move_for(change, A.AUTHORISE, Attempt(Actor(SYSTEM), policy)).target is S.DEPLOY


def test_deployment_starts_only_once(policy: Policy) -> None:
    change = a_change(stage=S.DEPLOY, deployment_started_at=NOW)
    assert refusal(change, A.START_DEPLOYMENT, ALICE, policy) == (
        "Can't start deploying a change that is in Deploy and verify: its deployment has started."
    )


def test_an_outcome_needs_a_started_deployment(policy: Policy) -> None:
    change = a_change(stage=S.DEPLOY)
    assert refusal(change, A.RECORD_OUTCOME, ALICE, policy).endswith(
        "its deployment has not started."
    )


def test_an_outcome_is_recorded_once(policy: Policy) -> None:
    change = a_change(stage=S.DEPLOY, deployment_started_at=NOW, outcome=Outcome.FAILED)
    assert refusal(change, A.RECORD_OUTCOME, ALICE, policy).endswith(
        "its outcome is already recorded."
    )


@pytest.mark.parametrize("action", [A.CLOSE, A.SUBMIT_POST_CHANGE_REVIEW])
def test_a_change_is_not_closed_before_its_outcome_is_recorded(
    action: Action, policy: Policy
) -> None:
    change = a_change(stage=S.DEPLOY, deployment_started_at=NOW, review_owed=True)
    assert refusal(change, action, ALICE, policy).endswith("its outcome has not been recorded.")


def test_a_change_that_owes_a_post_change_review_cannot_be_closed(policy: Policy) -> None:
    change = ready(S.DEPLOY, A.SUBMIT_POST_CHANGE_REVIEW, C.EMERGENCY)
    assert refusal(change, A.CLOSE, Actor(SYSTEM), policy) == (
        "Can't close a change that is in Deploy and verify: a post-change review is still owed."
    )


def test_a_post_change_review_is_taken_only_when_one_is_owed(policy: Policy) -> None:
    change = ready(S.DEPLOY, A.CLOSE, C.NORMAL)
    assert refusal(change, A.SUBMIT_POST_CHANGE_REVIEW, ALICE, policy).endswith(
        "no post-change review is owed."
    )


@pytest.mark.parametrize(
    "action", [A.EDIT, A.CANCEL, A.RETURN_TO_REQUEST, A.RETURN_TO_APPROVE, A.START_DEPLOYMENT]
)
def test_once_deployment_has_started_there_is_no_going_back(action: Action, policy: Policy) -> None:
    change = a_change(stage=S.DEPLOY, deployment_started_at=NOW)
    with pytest.raises(TransitionNotAllowed, match="its deployment has started"):
        move_for(change, action, Attempt(ALICE, policy))


# -- who: guards about the person ---------------------------------------------------------


@pytest.mark.parametrize("action", [A.SUBMIT, A.EDIT])
def test_only_the_requester_or_implementer_may_submit_or_edit(
    action: Action, policy: Policy
) -> None:
    change = a_change()
    for actor in (ALICE, IVAN):
        assert move_for(change, action, Attempt(actor, policy))
    for actor in (ANNA, BOB):
        assert refusal(change, action, actor, policy) == (
            "Only the requester or the implementer of CHG-0007 can do that."
        )


@pytest.mark.parametrize("action", [A.START_DEPLOYMENT, A.RECORD_OUTCOME])
def test_only_the_requester_or_implementer_may_deploy_and_verify(
    action: Action, policy: Policy
) -> None:
    change = ready(S.DEPLOY, action, C.NORMAL)
    assert move_for(change, action, Attempt(IVAN, policy))
    assert "Only the requester or the implementer" in refusal(change, action, ANNA, policy)


@pytest.mark.parametrize(
    ("stage", "action"),
    [(S.REVIEW, A.RECORD_REVIEW), (S.REVIEW, A.REJECT), (S.APPROVE, A.APPROVE)],
)
def test_the_requester_may_not_review_reject_or_approve_their_own_change(
    stage: Stage, action: Action, policy: Policy
) -> None:
    requester_is_an_approver = a_change(C.NORMAL, stage, requester=ANNA.user_id)
    assert refusal(requester_is_an_approver, action, ANNA, policy) == (
        "You requested CHG-0007: someone else must review or approve it."
    )


@pytest.mark.parametrize(
    ("stage", "action"),
    [(S.REVIEW, A.RECORD_REVIEW), (S.REVIEW, A.REJECT), (S.APPROVE, A.APPROVE)],
)
def test_the_implementer_may_not_review_reject_or_approve_the_change(
    stage: Stage, action: Action, policy: Policy
) -> None:
    change = a_change(C.NORMAL, stage)
    change.details = change.details.with_changes(implementer=ANNA.user_id)
    assert refusal(change, action, ANNA, policy) == (
        "You implement CHG-0007: someone else must review or approve it."
    )


@pytest.mark.parametrize("stage", [S.REVIEW, S.TEST])
def test_the_requester_may_not_approve_their_own_emergency(stage: Stage, policy: Policy) -> None:
    change = a_change(C.EMERGENCY, stage, requester=EMMA.user_id)
    assert "You requested CHG-0007" in refusal(change, A.APPROVE, EMMA, policy)


def test_only_approvers_named_in_the_policy_may_approve_a_normal_change(policy: Policy) -> None:
    change = a_change(C.NORMAL, S.APPROVE)
    for approver in (ANNA, ARTHUR, GRACE):
        assert move_for(change, A.APPROVE, Attempt(approver, policy))
    for outsider in (PETER, EMMA, OSCAR):
        assert refusal(change, A.APPROVE, outsider, policy) == (
            "Only approvers named in the change policy can do that."
        )


def test_only_emergency_approvers_may_approve_an_emergency_change(policy: Policy) -> None:
    change = a_change(C.EMERGENCY, S.REVIEW)
    for approver in (EMMA, OSCAR):
        assert move_for(change, A.APPROVE, Attempt(approver, policy))
    for outsider in (ANNA, GRACE, PETER):
        assert refusal(change, A.APPROVE, outsider, policy) == (
            "Only emergency approvers named in the change policy can do that."
        )


def test_an_approval_counts_once(policy: Policy) -> None:
    change = a_change(C.NORMAL, S.APPROVE, approvals=(Approval(ANNA.user_id, NOW),))
    assert refusal(change, A.APPROVE, ANNA, policy) == (
        "You have already approved CHG-0007; an approval counts once."
    )
    assert move_for(change, A.APPROVE, Attempt(ARTHUR, policy))


def test_a_peer_may_reject_in_review_but_only_an_approver_in_approve(policy: Policy) -> None:
    assert move_for(a_change(stage=S.REVIEW), A.REJECT, Attempt(PETER, policy))
    assert "Only approvers" in refusal(a_change(stage=S.APPROVE), A.REJECT, PETER, policy)
    assert move_for(a_change(stage=S.APPROVE), A.REJECT, Attempt(ANNA, policy))


@pytest.mark.parametrize("action", [A.CANCEL, A.SUBMIT_POST_CHANGE_REVIEW])
def test_cancel_and_post_change_review_are_for_people_in_charge_and_approvers(
    action: Action, policy: Policy
) -> None:
    stage = S.DEPLOY if action is A.SUBMIT_POST_CHANGE_REVIEW else S.APPROVE
    change = ready(stage, action, C.NORMAL)
    for actor in (ALICE, IVAN, ANNA, GRACE):
        assert move_for(change, action, Attempt(actor, policy))
    assert refusal(change, action, BOB, policy) == (
        "Only the requester, the implementer or an approver can do that to CHG-0007."
    )


def test_a_refusal_of_the_person_says_who_tried_what(policy: Policy) -> None:
    with pytest.raises(NotAllowed) as refused:
        move_for(a_change(stage=S.APPROVE), A.APPROVE, Attempt(PETER, policy))
    assert (refused.value.actor, refused.value.action) == ("UPETER", "approve")


def test_the_change_is_judged_before_the_person(policy: Policy) -> None:
    with pytest.raises(TransitionNotAllowed):
        move_for(a_change(C.STANDARD, S.APPROVE), A.APPROVE, Attempt(ALICE, policy))
