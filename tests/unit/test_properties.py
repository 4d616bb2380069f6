"""Random sequences of actions by random people never reach an illegal state, never let the
requester or implementer approve, never write a refused step, and leave a trail that verifies.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.unit.builders import (
    ALICE,
    ANNA,
    DETAILS,
    EMMA,
    EVERYONE,
    IVAN,
    Desk,
    a_policy,
    a_post_change_review,
)
from tests.unit.fakes import FakeClock, FakeUnitOfWork
from workflows import process
from workflows.audit import verify
from workflows.chase import Owed
from workflows.errors import ChangeError
from workflows.model import Actor, Change, Classification, Level, Outcome, Stage

POLICY = a_policy()
PEOPLE = st.sampled_from(EVERYONE)
#: Who acts: anyone, but the usual requester, implementer and approvers most often.
ACTING = st.sampled_from((*EVERYONE, ALICE, ALICE, IVAN, ANNA, EMMA))
CLASSIFICATIONS = st.sampled_from(list(Classification))
IMPLEMENTERS = st.sampled_from(["", *(p.user_id for p in EVERYONE)])


@dataclass(frozen=True)
class Attempted:
    """One step: what is tried, by whom, with which particulars."""

    what: str
    by: Actor
    args: dict[str, Any]

    def __repr__(self) -> str:
        return f"{self.what}(by={self.by.user_id}, {self.args})"


def _steps() -> st.SearchStrategy[Attempted]:
    plain = st.sampled_from(
        [
            "submit",
            "review",
            "add_evidence",
            "approve",
            "reject",
            "start_deployment",
            "approve",
            "start_deployment",
            "close_without_review",
            "cancel",
            "break_glass",
        ]
    )
    # The forward moves come up most often, so that most runs get deep into the process.
    forward = st.builds(Attempted, plain, ACTING, st.just({}))
    return st.one_of(
        forward,
        forward,
        forward,
        forward,
        st.builds(
            Attempted,
            st.just("review"),
            ACTING,
            st.fixed_dictionaries({"risk": st.sampled_from(list(Level))}),
        ),
        st.builds(
            Attempted,
            st.just("record_outcome"),
            ACTING,
            st.fixed_dictionaries({"outcome": st.sampled_from(list(Outcome))}),
        ),
        st.builds(
            Attempted,
            st.just("submit_post_change_review"),
            ACTING,
            st.fixed_dictionaries({"documented": st.booleans(), "incident": st.booleans()}),
        ),
        st.builds(
            Attempted,
            st.just("edit"),
            ACTING,
            st.fixed_dictionaries(
                {
                    "classification": CLASSIFICATIONS,
                    "implementer": IMPLEMENTERS,
                    "retitle": st.booleans(),
                }
            ),
        ),
        st.builds(
            Attempted,
            st.just("snooze"),
            ACTING,
            st.fixed_dictionaries(
                {
                    "kind": st.sampled_from([Owed.POST_CHANGE_REVIEW, Owed.RETROSPECTIVE_APPROVAL]),
                    "choice": st.sampled_from(["1h", "1d", "forever"]),
                }
            ),
        ),
        st.builds(
            Attempted,
            st.just("wait"),
            ACTING,
            st.fixed_dictionaries({"minutes": st.integers(min_value=1, max_value=60 * 72)}),
        ),
    )


def _run(desk: Desk, change: Change, step: Attempted) -> None:
    by, args = step.by, step.args
    actions: dict[str, Callable[[], object]] = {
        "submit": lambda: desk.submit(change, by),
        "review": lambda: desk.review(change, by, **args),
        "add_evidence": lambda: desk.add_evidence(change, by),
        "approve": lambda: desk.approve(change, by),
        "reject": lambda: desk.reject(change, by),
        "start_deployment": lambda: desk.start_deployment(change, by),
        "record_outcome": lambda: desk.record_outcome(change, args["outcome"], by),
        "submit_post_change_review": lambda: _post_change_review(desk, change, by, args),
        "close_without_review": lambda: desk.close_without_review(change, by),
        "cancel": lambda: desk.cancel(change, by),
        "break_glass": lambda: desk.break_glass(change, by, reason="Nobody answered."),
        "edit": lambda: _edit(desk, change, by, args),
        "snooze": lambda: desk.snooze(args["kind"], change, by, choice=args["choice"]),
    }
    actions[step.what]()


def _post_change_review(desk: Desk, change: Change, by: Actor, args: dict[str, Any]) -> None:
    owed = desk.stored(change).owed_documents if args["documented"] else ()
    review = a_post_change_review(**{doc: f"The {doc}, after the fact." for doc in owed})
    review = replace(review, contributed_to_incident=args["incident"])
    desk.submit_post_change_review(change, by, review)


def _edit(desk: Desk, change: Change, by: Actor, args: dict[str, Any]) -> None:
    details = DETAILS[args["classification"]](implementer=args["implementer"])
    if args["retitle"]:
        details = details.with_changes(title="A retitled change")
    process.edit(desk.uow, desk.clock, desk.policy, change.number, by, details)


def _snapshot(uow: FakeUnitOfWork) -> tuple[Any, ...]:
    """What is written, by identity: the fake replaces what it commits, never edits it."""
    return (
        {n: id(c) for n, c in uow.changes.committed.items()},
        list(uow.audit.events),
        dict(uow.obligations.committed),
        uow.commits,
        dict(uow.changes.pending),
        list(uow.audit.pending),
        dict(uow.obligations.pending),
    )


def assert_legal(uow: FakeUnitOfWork, change: Change) -> None:
    c = uow.changes.get(change.number)
    approvers = c.approvers()
    assert len(approvers) == len(set(approvers)), f"an approval counted twice: {approvers}"
    assert not set(approvers) & c.people_in_charge(), "approved by its requester or implementer"
    needed = POLICY.required_approvals(c.classification, c.risk)
    by_procedure = any(a.kind == "procedure" for a in c.approvals)
    if c.stage is Stage.DEPLOY:
        assert len(approvers) >= needed or by_procedure or c.break_glass_at is not None
    if c.stage in (Stage.REQUEST, Stage.REVIEW, Stage.TEST, Stage.APPROVE):
        assert c.deployment_started_at is None and c.outcome is None
    if c.stage is Stage.REQUEST:
        assert not approvers
    if c.deployment_started_at is not None:
        assert c.stage in (Stage.DEPLOY, Stage.CLOSED)
    if c.outcome is not None:
        assert c.deployment_started_at is not None
    if c.stage is Stage.CLOSED:
        assert c.outcome is not None
        done = not c.review_owed and not c.retro_approval_owed
        assert done or c.closed_without_review
        assert c.closed_at is not None
    if c.stage is Stage.CANCELLED:
        assert c.cancel_reason and c.deployment_started_at is None and c.closed_at is not None
    if c.stage.is_final:
        assert not c.review_owed and not c.retro_approval_owed, "a final change still owes"
    book = uow.obligations.committed
    assert c.review_owed == ((Owed.POST_CHANGE_REVIEW, c.number) in book)
    assert c.retro_approval_owed == ((Owed.RETROSPECTIVE_APPROVAL, c.number) in book)
    events = uow.audit.events
    checked, broken = verify(events, (events[-1].seq, events[-1].hash))
    assert broken is None and checked == len(events)


@settings(
    max_examples=int(os.environ.get("PROPS", 200)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    classification=CLASSIFICATIONS,
    requester=ACTING,
    implementer=IMPLEMENTERS,
    submitted=st.sampled_from([True, True, True, False]),
    steps=st.lists(_steps(), max_size=40),
)
def test_random_actions_by_random_people_never_reach_an_illegal_state(
    classification: Classification,
    requester: Actor,
    implementer: str,
    submitted: bool,
    steps: list[Attempted],
) -> None:
    uow, clock = FakeUnitOfWork(), FakeClock()
    desk = Desk(uow, clock, POLICY)
    details = DETAILS[classification](implementer=implementer)
    try:
        change = desk.request(details, by=requester, submit=submitted)
    except ChangeError:
        return
    assert_legal(uow, change)
    for step in steps:
        if step.what == "wait":
            clock.advance(minutes=step.args["minutes"])
            continue
        before = _snapshot(uow)
        try:
            _run(desk, change, step)
        except ChangeError:
            assert _snapshot(uow) == before, f"{step} was refused but wrote"
        assert_legal(uow, change)
    event(f"final stage {uow.changes.get(change.number).stage}")
    event(f"break glass {uow.changes.get(change.number).break_glass_at is not None}")
