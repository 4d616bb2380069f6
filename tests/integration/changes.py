"""The people, the policy and the changes the integration tests work with, and the trail they
leave: the use cases of workflows.process run on a real database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from storage.repositories import read_head, read_trail
from storage.uow import SqlUnitOfWork, read_session
from workflows import followup, process
from workflows.audit import ChainBreak, ChainedEntry, verify
from workflows.model import (
    Actor,
    Change,
    ChangeDetails,
    Classification,
    Level,
    Outcome,
    Rollback,
    Window,
)
from workflows.policy import Approvers, Policy, load_policy
from workflows.ports import Clock

REQUESTER = Actor("UREQUESTER")
PEER = Actor("UPEER")
APPROVER = Actor("UAPPROVER")

#: The default policy, with an approver named so that Normal changes can be approved.
POLICY: Policy = load_policy().model_copy(
    update={"approvers": Approvers(users=(APPROVER.user_id,))}
)

#: A week after the FakeClock starts (2026-11-23 09:00 UTC), so every test can request changes.
WINDOW = Window(datetime(2026, 12, 1, 10, 0, tzinfo=UTC), datetime(2026, 12, 1, 11, 0, tzinfo=UTC))


def normal_details(title: str = "Upgrade the payments database", **fields: object) -> ChangeDetails:
    details = ChangeDetails(
        title=title,
        classification=Classification.NORMAL,
        scope="database",
        description="Minor version upgrade of PostgreSQL on the payments cluster.",
        services=("payments",),
        risk=Level.LOW,
        impact=Level.MEDIUM,
        rollback=Rollback(plan="Fail over to the replica still on the old version."),
        window=WINDOW,
    )
    return details.with_changes(**fields)


def request(engine: Engine, clock: Clock, title: str = "Upgrade the payments database") -> Change:
    """A Normal change, requested and submitted: in Review."""
    uow = SqlUnitOfWork(engine)
    return process.request_change(uow, clock, POLICY, REQUESTER, normal_details(title)).change


def review_test_and_approve(engine: Engine, clock: Clock, number: int) -> Change:
    """Peer review, test evidence and an approval: the change is ready to deploy."""
    uow = SqlUnitOfWork(engine)
    process.record_review(
        uow, clock, POLICY, number, PEER, assessment="Looks safe; replica tested.", risk=Level.LOW
    )
    process.add_test_evidence(
        uow, clock, POLICY, number, REQUESTER, evidence="Upgraded staging, all checks green."
    )
    return process.approve(uow, clock, POLICY, number, APPROVER, comment="Go ahead.")


def deploy(engine: Engine, clock: Clock, number: int) -> Change:
    """Deploy the change successfully, which closes it."""
    uow = SqlUnitOfWork(engine)
    process.start_deployment(uow, clock, POLICY, number, REQUESTER)
    return followup.record_outcome(
        uow, clock, POLICY, number, REQUESTER, outcome=Outcome.SUCCESSFUL
    )


def requested_and_closed(engine: Engine, clock: Clock, title: str) -> Change:
    change = request(engine, clock, title)
    review_test_and_approve(engine, clock, change.number)
    return deploy(engine, clock, change.number)


def trail(engine: Engine) -> list[ChainedEntry]:
    with read_session(engine) as session:
        return list(read_trail(session))


def check_trail(engine: Engine) -> tuple[int, ChainBreak | None]:
    """How many events the chain has, and where it first breaks (None if intact)."""
    with read_session(engine) as session:
        return verify(read_trail(session), read_head(session))


def an_old_row(
    number: int, stage: str, document: dict[str, Any], created_at: datetime, **columns: object
) -> dict[str, object]:
    """A changes row as an earlier schema held it, for a migration's test to insert: the
    columns every revision has, and `columns` for those of the revision at hand."""
    return {
        "number": number,
        "version": 0,
        "stage": stage,
        "classification": "normal",
        "title": "t",
        "requester": "UALICE",
        "implementer": "",
        "review_owed": False,
        "created_at": created_at,
        "document": document,
        **columns,
    }
