"""GitHub deployments held by changebot's protection rule, until GitHub has its answer.

One row per `deployment_protection_rule` delivery, stored the moment it arrives (GitHub
never delivers it again). A replica's worker claims due rows under a lease (storage/leases.py),
decides, and answers. The answer is written here before it is sent, so that a send retried
after a timeout or a restart sends the same answer again, never another: GitHub takes the
first and refuses the rest, and the row is answered exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Insert,
    Text,
    Update,
    and_,
    bindparam,
    exists,
    or_,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import NullType
from sqlmodel import Field, Session, SQLModel, col, select

from storage import leases
from storage.db import is_sqlite
from storage.tables import ChangeRow, _when

#: Where a request stands: not yet decided, waiting on its change, its answer written down
#: and being sent, answered (or refused by GitHub as no longer waiting).
NEW, AWAITING, DECIDED, ANSWERED = "new", "awaiting", "decided", "answered"


class GithubDeploymentRow(SQLModel, table=True):
    __tablename__ = "github_deployments"
    __table_args__ = (
        Index("ix_github_deployments_run", "repository", "run_id", "environment"),
        Index(
            "ix_github_deployments_open_due_at",
            "due_at",
            sqlite_where=text("answered_at IS NULL"),
            postgresql_where=text("answered_at IS NULL"),
        ),
    )

    delivery_id: str = Field(primary_key=True, max_length=100)
    received_at: datetime = _when()
    repository: str = Field(max_length=200)
    environment: str = Field(max_length=255)
    run_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    installation_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha: str = Field(default="", max_length=64)
    ref: str = Field(default="", max_length=255)
    sender: str = Field(default="", max_length=100)
    #: The pull requests GitHub named, as `owner/repo#n`, JSON.
    pull_requests: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    number: int | None = Field(default=None)
    status: str = Field(default=NEW, max_length=20)
    decision: str = Field(default="", max_length=20)
    answer_state: str = Field(default="", max_length=20)
    answer_comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    #: The status report GitHub last took on the run ("" before the first): another is sent
    #: only when what the run waits for has changed.
    reported_comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    change_version: int = -1
    due_at: datetime | None = _when(nullable=True)
    attempts: int = 0
    lease_owner: str = Field(default="", max_length=80)
    lease_until: datetime | None = _when(nullable=True)
    answered_at: datetime | None = _when(nullable=True)
    last_error: str = Field(default="", max_length=500)


@dataclass(frozen=True)
class Requested:
    """A deployment GitHub holds for changebot's answer, as its webhook described it."""

    delivery_id: str
    repository: str
    environment: str
    run_id: int
    installation_id: int
    sha: str = ""
    ref: str = ""
    sender: str = ""
    pull_requests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Held:
    """A claimed request and where it stands."""

    request: Requested
    received_at: datetime
    number: int | None
    status: str
    decision: str
    answer_state: str
    answer_comment: str
    reported_comment: str
    attempts: int


def received(session: Session, requests: list[Requested], at: datetime) -> list[bool]:
    """Store deliveries, due at once, in one statement: for each, True the first time, False
    for a delivery seen before (or twice among these)."""
    if not requests:
        return []
    rows = {r.delivery_id: _row(r, at) for r in reversed(requests)}  # the first of twins
    stored = set(
        session.execute(_storing(is_sqlite(session.get_bind())), list(rows.values())).scalars()
    )
    if stored:
        _supersede(session, [rows[delivery] for delivery in stored], at)
    session.commit()
    first: list[bool] = []
    for request in requests:
        first.append(request.delivery_id in stored)
        stored.discard(request.delivery_id)  # a twin later in the round was seen before
    return first


@cache
def _storing(on_sqlite: bool) -> Insert:
    """`received`'s statement, built once per dialect and run with a row per delivery. A
    statement of the round's rows as its VALUES was built and compiled anew every round (for
    each round's number of rows): with `_supersede`'s scan, `received` cost 0.7 ms of CPU a
    delivery on SQLite and 1.3 ms on PostgreSQL, the webhook's acknowledgement waiting."""
    table = GithubDeploymentRow.__table__  # type: ignore[attr-defined]
    dialect = sqlite if on_sqlite else postgresql
    return cast(
        Insert,
        dialect.insert(table)
        .on_conflict_do_nothing(index_elements=["delivery_id"])
        .returning(table.c.delivery_id),
    )


def _supersede(session: Session, newer: list[dict[str, Any]], at: datetime) -> None:
    """A job run again (a re-run of its run: the same run id, a new delivery) is held anew:
    GitHub waits on the new request only, and an answer to an earlier attempt's would land on
    it, decided on what that attempt was tied to. The earlier ones are done with, unanswered.

    Run by run, each found through the index of runs: one statement for a round's runs (the
    webhook answers GitHub within seconds). A statement naming all the round's runs at once
    (`(repository, run_id, environment) IN (...)`) was read by SQLite through every open
    deployment instead, each round slower than the last while GitHub kept deployments
    waiting. A run that came twice in the round keeps both of its deliveries, as GitHub
    sent them together."""
    runs: dict[tuple[str, int, str], list[str]] = {}
    for r in newer:
        runs.setdefault((r["repository"], r["run_id"], r["environment"]), []).append(
            r["delivery_id"]
        )
    # Runs taken in the same order on every replica (a set's order is not): their rows are
    # locked in one order, never two replicas each holding what the other waits for.
    ordered = [
        ({"of_repository": repo, "of_run": run_id, "of_environment": env}, ids)
        for (repo, run_id, env), ids in sorted(runs.items())
    ]
    values = {"superseded_at": at, "why": SUPERSEDED}
    if once := [{**of, "kept": ids[0], **values} for of, ids in ordered if len(ids) == 1]:
        session.execute(_superseding(many=False), once)
    for of, ids in ordered:
        if len(ids) > 1:
            session.execute(_superseding(many=True), {**of, "kept": ids, **values})


SUPERSEDED = "superseded by a newer delivery of its run: the job was run again"


@cache
def _superseding(*, many: bool) -> Update:
    """`_supersede`'s statement for one run, keeping one delivery or (`many`) several."""
    row = GithubDeploymentRow
    table = row.__table__  # type: ignore[attr-defined]
    delivery = col(row.delivery_id)
    return (
        update(table)
        .where(
            col(row.repository) == bindparam("of_repository"),
            # Not cast to BIGINT as SQLAlchemy would: psycopg sends a small run id as a
            # smallint, and PostgreSQL's generic plan for the prepared statement, cast and
            # all, on a table not analysed yet (deliveries come in bursts), read every open
            # deployment (the partial index on due_at) instead of the run's: 1.5 ms a run,
            # not 0.05.
            col(row.run_id) == type_coerce(bindparam("of_run"), NullType()),
            col(row.environment) == bindparam("of_environment"),
            delivery.not_in(bindparam("kept", expanding=True))
            if many
            else delivery != bindparam("kept"),
            col(row.answered_at).is_(None),
        )
        .values(
            status=ANSWERED,
            answered_at=bindparam("superseded_at"),
            due_at=None,
            lease_owner="",
            lease_until=None,
            last_error=bindparam("why"),
        )
    )


def _row(request: Requested, at: datetime) -> dict[str, Any]:
    return {
        "delivery_id": request.delivery_id,
        "received_at": at,
        "repository": request.repository,
        "environment": request.environment,
        "run_id": request.run_id,
        "installation_id": request.installation_id,
        "sha": request.sha,
        "ref": request.ref,
        "sender": request.sender,
        "pull_requests": json.dumps(list(request.pull_requests)),
        "number": None,
        "status": NEW,
        "decision": "",
        "answer_state": "",
        "answer_comment": "",
        "reported_comment": "",
        "change_version": -1,
        "due_at": at,
        "attempts": 0,
        "lease_owner": "",
        "lease_until": None,
        "answered_at": None,
        "last_error": "",
    }


def _due(now: datetime) -> Any:
    """Open requests due by the clock, or whose change has moved since they were decided."""
    row = GithubDeploymentRow
    moved = exists().where(
        and_(
            col(ChangeRow.number) == col(row.number),
            col(ChangeRow.version) != col(row.change_version),
        )
    )
    waiting_on_change = and_(col(row.status) == AWAITING, moved)
    return and_(
        col(row.answered_at).is_(None),
        or_(and_(col(row.due_at).is_not(None), col(row.due_at) <= now), waiting_on_change),
    )


def claim_due(
    session: Session, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[Held]:
    query = leases.due_query(
        GithubDeploymentRow,
        now,
        limit,
        due=_due(now),
        order_by=col(GithubDeploymentRow.received_at),
        skip_locked=leases.skip_locked(session),
    )
    return leases.claim(session, query, owner, now, lease, _held)


def _held(row: GithubDeploymentRow) -> Held:
    return Held(
        request=Requested(
            delivery_id=row.delivery_id,
            repository=row.repository,
            environment=row.environment,
            run_id=row.run_id,
            installation_id=row.installation_id,
            sha=row.sha,
            ref=row.ref,
            sender=row.sender,
            pull_requests=tuple(json.loads(row.pull_requests)),
        ),
        received_at=row.received_at,
        number=row.number,
        status=row.status,
        decision=row.decision,
        answer_state=row.answer_state,
        answer_comment=row.answer_comment,
        reported_comment=row.reported_comment,
        attempts=row.attempts,
    )


def record(session: Session, delivery_id: str, owner: str, **values: Any) -> bool:
    """Progress on a request, only while this replica holds it (False: taken over)."""
    key = col(GithubDeploymentRow.delivery_id) == delivery_id
    return leases.record(session, GithubDeploymentRow, key, owner, **values)


def release_all(session: Session, owner: str) -> int:
    return leases.release_all(session, GithubDeploymentRow, owner)


def change_version(session: Session, number: int) -> int:
    version = session.exec(select(ChangeRow.version).where(ChangeRow.number == number)).first()
    return int(version) if version is not None else -1


def find(session: Session, delivery_id: str) -> GithubDeploymentRow | None:
    return session.get(GithubDeploymentRow, delivery_id)
