"""Work claimed under a time-limited lease, so that of several replicas exactly one does it.

A table of work has `lease_owner` and `lease_until` columns. A replica claims due rows (on
PostgreSQL with FOR UPDATE SKIP LOCKED; on SQLite inside a write transaction that begins
immediately, so claims are serialised), does the work, and records its progress only while
the row is still leased to it. A replica that dies leaves leases that run out, and another
takes the rows over; a lease that ran out but was not taken over is still its owner's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, or_, update
from sqlmodel import Session, SQLModel, col, select

from storage.db import is_sqlite

Row = TypeVar("Row", bound=SQLModel)


def free(model: type[SQLModel], now: datetime) -> ColumnElement[bool]:
    """Rows nobody holds: never leased, or their lease ran out."""
    until = col(model.lease_until)  # type: ignore[attr-defined]
    return or_(until.is_(None), until < now)


def claim(
    session: Session,
    model: type[Row],
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    *,
    due: ColumnElement[bool],
    order_by: Any,
) -> Sequence[Row]:
    """Lease up to `limit` rows that are `due` and free to `owner`; commits."""
    query = select(model).where(due).where(free(model, now)).order_by(order_by).limit(limit)
    if not is_sqlite(session.get_bind()):  # type: ignore[arg-type]
        query = query.with_for_update(skip_locked=True)
    rows = session.exec(query).all()
    for row in rows:
        row.lease_owner, row.lease_until = owner, now + lease
        session.add(row)
    session.commit()
    return rows


def record(
    session: Session, model: type[SQLModel], key: ColumnElement[bool], owner: str, **values: Any
) -> bool:
    """Write `values` to the row only while it is leased to `owner`; False if it was taken
    over. Commits."""
    held = and_(key, col(model.lease_owner) == owner)  # type: ignore[attr-defined]
    result = session.execute(
        update(model).where(held).values(**values).execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_all(session: Session, model: type[SQLModel], owner: str) -> int:
    """On shutdown: hand every lease back, so another replica takes the work over at once."""
    result = session.execute(
        update(model)
        .where(col(model.lease_owner) == owner)  # type: ignore[attr-defined]
        .values(lease_owner="", lease_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
