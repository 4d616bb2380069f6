"""The card's buttons: what anyone could do now, and what this person may do now.

The promise to the bot is that a button offered to someone works when they click it, and that
anything not offered is refused. These tests hold every use case to that, for every person, in
every state a change can rest in.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.builders import (
    ALICE,
    ANNA,
    ARTHUR,
    EMMA,
    EVERYONE,
    GRACE,
    IVAN,
    OSCAR,
    PETER,
    Desk,
    a_policy,
    emergency_details,
    normal_details,
    nothing_written,
    standard_details,
)
from tests.unit.fakes import FakeUnitOfWork
from workflows.audit import verify
from workflows.errors import NotAllowed, TransitionNotAllowed
from workflows.model import Actor, Change, Level, Outcome
from workflows.stages import SYSTEM_ACTIONS, Action, allowed_actions, available_actions

A = Action
Walk = Callable[[Desk], Change]


def _normal(desk: Desk, *, submit: bool = True) -> Change:
    return desk.request(normal_details(implementer=IVAN.user_id), submit=submit)


def _emergency(desk: Desk, *, submit: bool = True) -> Change:
    return desk.request(emergency_details(implementer=IVAN.user_id), submit=submit)


def _standard(desk: Desk, *, submit: bool = True) -> Change:
    return desk.request(standard_details(implementer=IVAN.user_id), submit=submit)


def _high_risk_approved_once(desk: Desk) -> Change:
    change = desk.add_evidence(desk.review(_normal(desk), risk=Level.HIGH))
    return desk.approve(change, by=ANNA)


def _emergency_needing_two(desk: Desk) -> Change:
    desk.policy = a_policy(
        approvals="emergency = 2", emergency='approver_users = ["UEMMA"]\napprover_groups = []'
    )
    return desk.approve(_emergency(desk), by=EMMA)


#: Every state a change can rest in between use cases, reached the way people reach it.
STATES: dict[str, Walk] = {
    "normal in request": lambda d: _normal(d, submit=False),
    "normal in review": _normal,
    "normal in test": lambda d: d.review(_normal(d)),
    "normal in approve": lambda d: d.add_evidence(d.review(_normal(d))),
    "normal with one of two approvals": _high_risk_approved_once,
    "normal authorised": lambda d: d.approve(d.add_evidence(d.review(_normal(d)))),
    "normal deploying": lambda d: d.start_deployment(
        d.approve(d.add_evidence(d.review(_normal(d))))
    ),
    "normal rejected": lambda d: d.reject(_normal(d), by=PETER),
    "normal back for approval": lambda d: d.edit(
        d.approve(d.add_evidence(d.review(_normal(d)))), title="Retitled"
    ),
    "normal failed": lambda d: d.record_outcome(d.deploying(normal_details()), Outcome.FAILED),
    "normal closed": lambda d: d.record_outcome(d.deploying(normal_details())),
    "normal cancelled": lambda d: d.cancel(_normal(d)),
    "standard in request": lambda d: _standard(d, submit=False),
    "standard authorised": _standard,
    "standard deploying": lambda d: d.start_deployment(_standard(d)),
    "standard rolled back": lambda d: d.record_outcome(
        d.start_deployment(_standard(d)), Outcome.ROLLED_BACK
    ),
    "emergency in request": lambda d: _emergency(d, submit=False),
    "emergency in review": _emergency,
    "emergency in test": lambda d: d.review(_emergency(d)),
    "emergency in approve": lambda d: d.add_evidence(d.review(_emergency(d))),
    "emergency with one of two approvals": _emergency_needing_two,
    "emergency authorised": lambda d: d.approve(_emergency(d), by=EMMA),
    "emergency deploying": lambda d: d.start_deployment(d.approve(_emergency(d), by=EMMA)),
    "emergency owing its review": lambda d: d.record_outcome(
        d.start_deployment(d.approve(_emergency(d), by=EMMA))
    ),
    "emergency closed": lambda d: d.submit_post_change_review(
        d.record_outcome(d.start_deployment(d.approve(_emergency(d), by=EMMA)))
    ),
}

#: How each button is clicked: its use case, with words that pass validation.
CLICKS: dict[Action, Callable[[Desk, Change, Actor], Change]] = {
    A.SUBMIT: lambda d, c, by: d.submit(c, by=by),
    A.RECORD_REVIEW: lambda d, c, by: d.review(c, by=by),
    A.ADD_TEST_EVIDENCE: lambda d, c, by: d.add_evidence(c, by=by),
    A.APPROVE: lambda d, c, by: d.approve(c, by=by),
    A.REJECT: lambda d, c, by: d.reject(c, by=by),
    A.START_DEPLOYMENT: lambda d, c, by: d.start_deployment(c, by=by),
    A.RECORD_OUTCOME: lambda d, c, by: d.record_outcome(c, by=by),
    A.SUBMIT_POST_CHANGE_REVIEW: lambda d, c, by: d.submit_post_change_review(c, by=by),
    A.EDIT: lambda d, c, by: d.edit(c, by=by, title="A clearer title"),
    A.CANCEL: lambda d, c, by: d.cancel(c, by=by),
    A.BREAK_GLASS: lambda d, c, by: d.break_glass(c, by=by),
    A.CLOSE_WITHOUT_REVIEW: lambda d, c, by: d.close_without_review(c, by=by),
}


def branch(uow: FakeUnitOfWork) -> FakeUnitOfWork:
    """A second store holding what this one committed, to try a click without spending it.

    Shallow copies suffice: the fake hands out copies and replaces what it commits.
    """
    other = FakeUnitOfWork()
    other.changes.committed = dict(uow.changes.committed)
    other.audit.events = list(uow.audit.events)
    return other


def test_every_action_a_person_takes_has_a_use_case() -> None:
    # CLOSE is taken by record_outcome itself, when no review is owed.
    assert set(CLICKS) == set(Action) - SYSTEM_ACTIONS - {A.CLOSE}


@pytest.mark.parametrize("walk", STATES.values(), ids=STATES.keys())
def test_the_card_never_offers_a_move_the_process_makes_itself(walk: Walk, desk: Desk) -> None:
    change = desk.stored(walk(desk))
    offered = set(available_actions(change, desk.policy))
    assert not offered & SYSTEM_ACTIONS
    assert A.CLOSE not in offered


@pytest.mark.parametrize("walk", STATES.values(), ids=STATES.keys())
def test_what_the_card_offers_each_person_is_exactly_what_they_can_do(
    walk: Walk, desk: Desk
) -> None:
    change = desk.stored(walk(desk))
    offered = available_actions(change, desk.policy)
    assert not set(offered) & SYSTEM_ACTIONS
    allowed = {actor: allowed_actions(change, actor, desk.policy) for actor in EVERYONE}
    for action, click in CLICKS.items():
        if action not in offered:
            # Not on the card: refused whoever clicks, even those most entitled to act.
            for actor in (ALICE, ANNA, EMMA):
                assert action not in allowed[actor]
                with nothing_written(desk.uow), pytest.raises(TransitionNotAllowed):
                    click(desk, change, actor)
            continue
        for actor in EVERYONE:
            if action in allowed[actor]:
                elsewhere = Desk(branch(desk.uow), desk.clock, desk.policy)
                click(elsewhere, change, actor)
                assert verify(elsewhere.uow.audit.events)[1] is None
            else:
                with nothing_written(desk.uow), pytest.raises(NotAllowed):
                    click(desk, change, actor)


# -- what the card shows, case by case ----------------------------------------------------


def test_a_normal_change_awaiting_approval_offers_approve_reject_edit_and_cancel(
    desk: Desk,
) -> None:
    change = desk.stored(STATES["normal in approve"](desk))
    assert available_actions(change, desk.policy) == [A.APPROVE, A.REJECT, A.EDIT, A.CANCEL]
    assert allowed_actions(change, ANNA, desk.policy) == [A.APPROVE, A.REJECT, A.CANCEL]
    assert allowed_actions(change, GRACE, desk.policy) == [A.APPROVE, A.REJECT, A.CANCEL]
    assert allowed_actions(change, ALICE, desk.policy) == [A.EDIT, A.CANCEL]
    assert allowed_actions(change, IVAN, desk.policy) == [A.EDIT, A.CANCEL]
    assert allowed_actions(change, PETER, desk.policy) == []


def test_an_approver_who_has_approved_is_offered_no_second_approval(desk: Desk) -> None:
    change = desk.stored(STATES["normal with one of two approvals"](desk))
    assert A.APPROVE not in allowed_actions(change, ANNA, desk.policy)
    assert A.APPROVE in allowed_actions(change, ARTHUR, desk.policy)


def test_an_emergency_in_review_offers_its_approvers_the_compressed_approval(
    desk: Desk,
) -> None:
    change = desk.stored(STATES["emergency in review"](desk))
    assert available_actions(change, desk.policy, desk.clock.now()) == [
        A.RECORD_REVIEW,
        A.APPROVE,
        A.REJECT,
        A.EDIT,
        A.CANCEL,
    ]
    opened = desk.clock.now() + desk.policy.emergency.break_glass_after
    assert A.BREAK_GLASS in available_actions(change, desk.policy, opened)
    assert allowed_actions(change, OSCAR, desk.policy) == [
        A.RECORD_REVIEW,
        A.APPROVE,
        A.REJECT,
        A.CANCEL,
    ]
    assert allowed_actions(change, ANNA, desk.policy) == [A.RECORD_REVIEW, A.REJECT]


def test_an_authorised_change_offers_deployment_to_the_people_in_charge(desk: Desk) -> None:
    change = desk.stored(STATES["normal authorised"](desk))
    assert available_actions(change, desk.policy) == [A.START_DEPLOYMENT, A.EDIT, A.CANCEL]
    assert allowed_actions(change, IVAN, desk.policy) == [A.START_DEPLOYMENT, A.EDIT, A.CANCEL]
    assert allowed_actions(change, ANNA, desk.policy) == [A.CANCEL]


def test_a_deployment_under_way_offers_only_its_outcome(desk: Desk) -> None:
    change = desk.stored(STATES["normal deploying"](desk))
    assert available_actions(change, desk.policy) == [A.RECORD_OUTCOME]


def test_a_change_owing_its_review_offers_the_review_or_an_approvers_close(desk: Desk) -> None:
    change = desk.stored(STATES["emergency owing its review"](desk))
    assert available_actions(change, desk.policy) == [
        A.SUBMIT_POST_CHANGE_REVIEW,
        A.CLOSE_WITHOUT_REVIEW,
    ]
    assert A.CLOSE_WITHOUT_REVIEW in allowed_actions(change, EMMA, desk.policy)
    assert allowed_actions(change, PETER, desk.policy) == []


@pytest.mark.parametrize("state", ["normal closed", "normal cancelled", "emergency closed"])
def test_a_finished_change_offers_nothing(state: str, desk: Desk) -> None:
    change = desk.stored(STATES[state](desk))
    assert change.stage.is_final
    assert available_actions(change, desk.policy) == []
    assert all(allowed_actions(change, actor, desk.policy) == [] for actor in EVERYONE)
