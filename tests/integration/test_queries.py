"""The lists people read (`/change list awaiting-me`, App Home) answer the question asked, in
the database: however many other changes are open, nobody's items go missing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Engine

from bot import queries
from storage.uow import SqlUnitOfWork, read_session
from tests.integration.changes import POLICY, normal_details
from workflows.model import Actor, Approval, Change, Classification, Stage

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
APPROVER = Actor("UAPPROVER")  # named in POLICY's approvers
ME = Actor("UME")


def seed(engine: Engine, count: int, requester: str, **state: object) -> list[Change]:
    """`count` changes as the store would hold them, in one transaction."""
    made = []
    with SqlUnitOfWork(engine) as uow:
        for i in range(count):
            change = uow.changes.add(normal_details(f"Change {i}"), requester, AT)
            change = replace(change, **state)  # type: ignore[arg-type]
            uow.changes.save(change)
            made.append(change)
        uow.commit()
    return made


def test_a_change_awaiting_my_approval_is_listed_behind_hundreds_that_are_not(
    engine: Engine,
) -> None:
    (mine,) = seed(engine, 1, "UREQUESTER", stage=Stage.APPROVE)
    # Newer, and in the way: approved by me already, or requested by me.
    approved = (Approval(APPROVER.user_id, AT),)
    seed(engine, 150, "UOTHER", stage=Stage.APPROVE, approvals=approved)
    seed(engine, 150, APPROVER.user_id, stage=Stage.APPROVE)

    with read_session(engine) as session:
        found = queries.awaiting(session, APPROVER, POLICY)

    assert [c.number for c in found] == [mine.number]


def test_a_peer_sees_changes_to_review_but_not_changes_to_approve(engine: Engine) -> None:
    (to_review,) = seed(engine, 1, "UREQUESTER", stage=Stage.REVIEW)
    seed(engine, 3, "UREQUESTER", stage=Stage.APPROVE)
    seed(engine, 2, "UREQUESTER", stage=Stage.DEPLOY)

    with read_session(engine) as session:
        found = queries.awaiting(session, ME, POLICY)

    assert [c.number for c in found] == [to_review.number]


def test_an_emergency_owing_a_retrospective_approval_awaits_the_emergency_approver(
    engine: Engine,
) -> None:
    details = normal_details(classification=Classification.EMERGENCY)
    with SqlUnitOfWork(engine) as uow:
        change = uow.changes.add(details, "UREQUESTER", AT)
        uow.changes.save(replace(change, stage=Stage.DEPLOY, retro_approval_owed=True))
        uow.commit()

    with read_session(engine) as session:
        found = queries.awaiting(session, APPROVER, POLICY)

    assert [c.number for c in found] == [change.number]


def test_my_owed_reviews_are_listed_however_many_others_owe(engine: Engine) -> None:
    (mine,) = seed(engine, 1, ME.user_id, stage=Stage.DEPLOY, review_owed=True)
    seed(engine, 250, "UOTHER", stage=Stage.DEPLOY, review_owed=True)
    implemented = normal_details(implementer=ME.user_id)
    with SqlUnitOfWork(engine) as uow:
        theirs = uow.changes.add(implemented, "UOTHER", AT)
        uow.changes.save(replace(theirs, stage=Stage.DEPLOY, review_owed=True))
        uow.commit()

    with read_session(engine) as session:
        owed = queries.reviews_owed(session, ME.user_id)

    assert [c.number for c in owed] == [theirs.number, mine.number]
