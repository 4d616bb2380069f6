"""What is owed, in the database: one row per obligation, with when it is chased next.

The sweep of every replica claims due rows with a time-limited lease (PostgreSQL: FOR UPDATE
SKIP LOCKED; SQLite: a write transaction that begins immediately), sends the reminder, then
records it — the new plan and its audit event, in one transaction — only while it still holds
the lease. A replica that dies leaves leases that expire and are taken over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Index, and_, text
from sqlmodel import Field, Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from storage import leases
from storage.repositories import SqlAudit
from storage.tables import _when
from workflows.audit import AuditEntry
from workflows.chase import Obligation, Owed


class ObligationRow(SQLModel, table=True):
    __tablename__ = "obligations"
    __table_args__ = (
        Index(
            "ux_obligations_open",
            "kind",
            "number",
            unique=True,
            sqlite_where=text("settled_at IS NULL"),
            postgresql_where=text("settled_at IS NULL"),
        ),
        # The chaser's claim: due open obligations, oldest first. Settled ones (most of them,
        # after years) are left out, or the claim would walk them all (bench/sweep.py).
        Index(
            "ix_obligations_open_next_at",
            "next_at",
            sqlite_where=text("settled_at IS NULL"),
            postgresql_where=text("settled_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    number: int = 0
    owner: str = Field(default="", max_length=40)
    deadline: datetime = _when()
    next_at: datetime = _when()
    reminders: int = 0
    escalations: int = 0
    snoozed_until: datetime | None = _when(nullable=True)
    settled_at: datetime | None = _when(nullable=True)
    lease_owner: str = Field(default="", max_length=80)
    lease_until: datetime | None = _when(nullable=True)


def to_obligation(row: ObligationRow) -> Obligation:
    return Obligation(
        kind=Owed(row.kind),
        owner=row.owner,
        deadline=row.deadline,
        next_at=row.next_at,
        number=row.number,
        reminders=row.reminders,
        escalations=row.escalations,
        snoozed_until=row.snoozed_until,
    )


def _plan(o: Obligation) -> dict[str, Any]:
    return {
        "owner": o.owner,
        "deadline": o.deadline,
        "next_at": o.next_at,
        "reminders": o.reminders,
        "escalations": o.escalations,
        "snoozed_until": o.snoozed_until,
    }


class SqlObligations:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _open(self, kind: Owed, number: int) -> ObligationRow | None:
        query = select(ObligationRow).where(
            ObligationRow.kind == kind.value,
            ObligationRow.number == number,
            col(ObligationRow.settled_at).is_(None),
        )
        return self.session.exec(query).first()

    def owe(self, obligation: Obligation) -> None:
        row = self._open(obligation.kind, obligation.number)
        if row is None:
            row = ObligationRow(
                kind=obligation.kind.value, number=obligation.number, **_plan(obligation)
            )
        else:
            for name, value in _plan(obligation).items():
                setattr(row, name, value)
        self.session.add(row)
        self.session.flush()

    def find(self, kind: Owed, number: int) -> Obligation | None:
        row = self._open(kind, number)
        return to_obligation(row) if row else None

    def update(self, obligation: Obligation) -> None:
        self.owe(obligation)

    def settle(self, kind: Owed, number: int, at: datetime) -> None:
        row = self._open(kind, number)
        if row is not None:
            row.settled_at = at
            self.session.add(row)
            self.session.flush()


@dataclass(frozen=True)
class Claimed:
    id: int
    obligation: Obligation


def due_query(now: datetime, limit: int, *, skip_locked: bool) -> SelectOfScalar[ObligationRow]:
    """The claim's query: the open obligations due by `now`, oldest first, not leased.
    Separate so that bench/sweep.py can explain exactly the query the chaser runs."""
    due = and_(col(ObligationRow.settled_at).is_(None), col(ObligationRow.next_at) <= now)
    return leases.due_query(
        ObligationRow,
        now,
        limit,
        due=due,
        order_by=col(ObligationRow.next_at),
        skip_locked=skip_locked,
    )


def claim_due(
    session: Session, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Lease up to `limit` obligations whose next reminder is due; commits."""
    query = due_query(now, limit, skip_locked=leases.skip_locked(session))
    return leases.claim(session, query, owner, now, lease, _claimed)


def _claimed(row: ObligationRow) -> Claimed:
    assert row.id is not None
    return Claimed(row.id, to_obligation(row))


def record_reminder(
    session: Session,
    claimed: Claimed,
    owner: str,
    planned: Obligation,
    entry: AuditEntry,
) -> bool:
    """Record the reminder sent for `claimed` (its count, and the next one as `planned`) with
    its audit event, only if the lease is still ours.

    A lease that ran out but was not taken over is still ours: nobody else can have sent this
    reminder, so recording it is right (refusing would make another replica send it again).

    The row may have moved while the reminder was on its way, and what a person or the
    process decided meanwhile stands:
    - its owner snoozed it: the reminder counts, and the next one comes at the later of the
      snooze's time and the cadence's (a snooze never brings a reminder forward);
    - it was planned anew (a new owner or deadline): that plan is left whole, counts
      included; the reminder that went to the old plan is in the audit trail.
    """
    row = session.exec(
        select(ObligationRow)
        .where(col(ObligationRow.id) == claimed.id)
        .where(col(ObligationRow.lease_owner) == owner)
        .where(col(ObligationRow.settled_at).is_(None))
        .with_for_update()
    ).first()
    if row is None:
        session.rollback()
        return False
    was, current = claimed.obligation, to_obligation(row)
    if (current.owner, current.deadline) == (was.owner, was.deadline):
        row.reminders = current.reminders + (planned.reminders - was.reminders)
        row.escalations = current.escalations + (planned.escalations - was.escalations)
        if (current.next_at, current.snoozed_until) == (was.next_at, was.snoozed_until):
            row.next_at, row.snoozed_until = planned.next_at, planned.snoozed_until
        else:  # snoozed meanwhile
            row.next_at = max(current.next_at, planned.next_at)
    row.lease_owner, row.lease_until = "", None
    session.add(row)
    SqlAudit(session).append(entry)
    session.commit()
    return True


def release(session: Session, claimed_id: int, owner: str) -> None:
    """Give a lease back without reminding (nothing could be sent): retried next sweep."""
    key = col(ObligationRow.id) == claimed_id
    leases.record(session, ObligationRow, key, owner, lease_owner="", lease_until=None)


def release_all(session: Session, owner: str) -> int:
    return leases.release_all(session, ObligationRow, owner)


def open_obligations(session: Session, kind: Owed | None = None) -> list[Obligation]:
    query = select(ObligationRow).where(col(ObligationRow.settled_at).is_(None))
    if kind is not None:
        query = query.where(ObligationRow.kind == kind.value)
    return [to_obligation(row) for row in session.exec(query.order_by(col(ObligationRow.next_at)))]
