"""Repositories: the ports of workflows/ implemented with sqlmodel."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from storage.outbox import mark_due
from storage.rows import change_from_row, row_values
from storage.tables import AuditEventRow, AuditHeadRow, ChangeRow
from workflows.audit import GENESIS, AuditEntry, ChainedEntry, canonical_details, chain
from workflows.errors import NotFound, StaleChange
from workflows.model import Change, ChangeDetails, Stage, format_ref, parse_ref


class SqlChanges:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, details: ChangeDetails, requester: str, at: datetime, requested_in: str = ""
    ) -> Change:
        change = Change(
            number=0, details=details, requester=requester, created_at=at, requested_in=requested_in
        )
        row = ChangeRow(version=0, **row_values(change))
        self.session.add(row)
        self.session.flush()
        assert row.number is not None
        change.number = row.number
        return change

    def get(self, number: int) -> Change:
        row = self.session.get(ChangeRow, number)
        if row is None:
            raise NotFound("change", format_ref(number))
        return change_from_row(row)

    def save(self, change: Change) -> None:
        """Compare-and-set on the version: a write based on an older read is refused."""
        values = row_values(change)
        del values["created_at"]
        statement = (
            update(ChangeRow)
            .where(col(ChangeRow.number) == change.number)
            .where(col(ChangeRow.version) == change.version)
            .values(version=change.version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        result = self.session.execute(statement)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            self.session.expire_all()
            current = self.session.get(ChangeRow, change.number)
            if current is None:
                raise NotFound("change", change.ref)
            raise StaleChange(change.ref, change.version, current.version)
        self.session.expire_all()
        change.version += 1

    def get_many(self, numbers: Sequence[int]) -> dict[int, Change]:
        rows = self.session.exec(select(ChangeRow).where(col(ChangeRow.number).in_(set(numbers))))
        return {row.number: change_from_row(row) for row in rows if row.number is not None}

    def linked_to(self, pull_requests: Sequence[str]) -> Change | None:
        """The newest open change that links to one of these pull requests (`owner/repo#n`)."""
        if not pull_requests:
            return None
        query = (
            select(ChangeRow)
            .where(col(ChangeRow.pull_request).in_([p.lower() for p in pull_requests]))
            .where(col(ChangeRow.stage).not_in([Stage.CLOSED.value, Stage.CANCELLED.value]))
            .order_by(col(ChangeRow.number).desc())
            .limit(1)
        )
        row = self.session.exec(query).first()
        return change_from_row(row) if row is not None else None

    def find(
        self,
        *,
        stages: Sequence[Stage] | None = None,
        person: str | None = None,
        review_owed: bool | None = None,
        limit: int = 50,
    ) -> list[Change]:
        query = select(ChangeRow)
        if stages is not None:
            query = query.where(col(ChangeRow.stage).in_([s.value for s in stages]))
        if person is not None:
            query = query.where(
                or_(col(ChangeRow.requester) == person, col(ChangeRow.implementer) == person)
            )
        if review_owed is not None:
            query = query.where(col(ChangeRow.review_owed) == review_owed)
        query = query.order_by(col(ChangeRow.number).desc()).limit(limit)
        return [change_from_row(row) for row in self.session.exec(query)]


class SqlAudit:
    """Appends to the hash chain. The chain's head row is locked for the rest of the
    transaction, so writers on several replicas extend the chain one at a time. One serves
    one transaction (the unit of work makes one per `with`): it keeps the head it locked."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._head: AuditHeadRow | None = None
        #: Changes already marked due in this transaction: a step's second event (an
        #: approval's authorisation, say) has nothing to add to the first's mark.
        self._marked: set[int] = set()

    def append(self, entry: AuditEntry, *, shown: bool = True) -> None:
        head = self._lock_head()
        event = chain(head.seq + 1, head.hash, entry)
        self.session.add(to_row(event))
        head.seq, head.hash = event.seq, event.hash
        self.session.add(head)
        number = parse_ref(entry.ref) if shown else None
        if number is not None and number not in self._marked:
            self.session.flush()
            mark_due(self.session, number, entry.at)
            self._marked.add(number)
        self.session.flush()

    def _lock_head(self) -> AuditHeadRow:
        if self._head is None:
            query = select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
            head = self.session.exec(query).first()
            if head is None:
                head = AuditHeadRow(id=1, seq=0, hash=GENESIS)
            self._head = head
        return self._head


def to_row(event: ChainedEntry) -> AuditEventRow:
    e = event.entry
    return AuditEventRow(
        seq=event.seq,
        at=e.at,
        actor=e.actor,
        action=e.action,
        ref=e.ref,
        from_stage=e.from_stage,
        to_stage=e.to_stage,
        details=canonical_details(e.details),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def from_row(row: AuditEventRow) -> ChainedEntry:
    entry = AuditEntry(
        at=row.at,
        actor=row.actor,
        action=row.action,
        ref=row.ref,
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        details=json.loads(row.details),
    )
    return ChainedEntry(row.seq, entry, row.prev_hash, row.hash)


def read_trail(
    session: Session,
    *,
    ref: str | None = None,
    since: datetime | None = None,
    after: int = 0,
    batch: int = 1000,
) -> Iterator[ChainedEntry]:
    """The trail in chain order (from event `after` + 1), read in batches so a long trail
    never sits in memory."""
    last = after
    while True:
        query = select(AuditEventRow).where(col(AuditEventRow.seq) > last)
        if ref is not None:
            query = query.where(AuditEventRow.ref == ref)
        if since is not None:
            query = query.where(col(AuditEventRow.at) >= since)
        rows = session.exec(query.order_by(col(AuditEventRow.seq)).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            yield from_row(row)
        last = rows[-1].seq


def read_head(session: Session) -> tuple[int, str] | None:
    head = session.get(AuditHeadRow, 1)
    return (head.seq, head.hash) if head else None
