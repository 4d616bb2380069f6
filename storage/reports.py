"""What the evidence report reads: the changes of a period a batch at a time, and the audit
events of each batch, so that a year of changes and millions of events stream through.

A change belongs to a period when it was requested in it or its outcome was recorded in it:
an auditor sampling the period's production changes sees every change deployed in it, and
every change asked for in it, deployed or not yet.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select, type_coerce
from sqlalchemy.types import NullType
from sqlmodel import Session

from storage.repositories import readable
from storage.rows import change_from_row
from storage.tables import AuditEventRow, ChangeRow
from workflows.audit import AuditEntry
from workflows.model import Change, Window

_EVENTS = cast(Table, AuditEventRow.__table__)  # type: ignore[attr-defined]
_CHANGES = cast(Table, ChangeRow.__table__)  # type: ignore[attr-defined]
_ENTRY = (
    _EVENTS.c.ref,
    type_coerce(_EVENTS.c.at, NullType()),  # read raw: `readable` reads it (or says it cannot)
    _EVENTS.c.actor,
    _EVENTS.c.action,
    _EVENTS.c.from_stage,
    _EVENTS.c.to_stage,
    _EVENTS.c.details,
)


def changes_in(session: Session, period: Window, batch: int = 500) -> Iterator[list[Change]]:
    """The changes requested in `period` or whose outcome was recorded in it, by number,
    `batch` at a time (keyset pages on the primary key: each page starts where the last
    ended, so the whole is one walk of the table however long the period)."""
    requested = and_(_CHANGES.c.created_at >= period.start, _CHANGES.c.created_at < period.end)
    deployed = and_(_CHANGES.c.outcome_at >= period.start, _CHANGES.c.outcome_at < period.end)
    last = 0
    while True:
        # Rows, not ORM objects: nothing is kept by the session, and a third of the read's
        # time (the identity map's bookkeeping) is not spent.
        query = (
            select(_CHANGES)
            .where(_CHANGES.c.number > last)
            .where(or_(requested, deployed))
            .order_by(_CHANGES.c.number)
            .limit(batch)
        )
        rows = session.execute(query).all()
        if not rows:
            return
        changes = [change_from_row(cast(ChangeRow, row)) for row in rows]
        yield changes
        last = changes[-1].number


def events_of(
    session: Session, refs: Sequence[str], actions: Collection[str] | None = None
) -> dict[str, list[AuditEntry]]:
    """The audit events of these changes (only `actions`, if given), each change's in the
    order of the chain: read through the index on (ref, seq)."""
    found: dict[str, list[AuditEntry]] = {ref: [] for ref in refs}
    if not refs:
        return found
    query = select(*_ENTRY).where(_EVENTS.c.ref.in_(list(refs)))
    if actions is not None:
        query = query.where(_EVENTS.c.action.in_(sorted(actions)))
    for row in session.execute(query.order_by(_EVENTS.c.ref, _EVENTS.c.seq)):
        found[row.ref].append(_entry(row))
    return found


def events_with_ref(session: Session, ref: str, period: Window) -> Iterator[AuditEntry]:
    """The events of one ref recorded in `period` (requests refused in a freeze are kept
    under a ref of their own), in the order of the chain."""
    query = (
        select(*_ENTRY)
        .where(_EVENTS.c.ref == ref)
        .where(_EVENTS.c.at >= period.start)
        .where(_EVENTS.c.at < period.end)
        .order_by(_EVENTS.c.seq)
    )
    for row in session.execute(query):
        yield _entry(row)


def _entry(row: Any) -> AuditEntry:
    ref, raw_at, actor, action, from_stage, to_stage, raw_details = row
    at, details = readable(raw_at, raw_details)
    return AuditEntry(at, actor, action, ref, from_stage, to_stage, details)
