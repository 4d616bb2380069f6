"""Work claimed under a time-limited lease, so that of several replicas exactly one does it.

A table of work has `lease_owner` and `lease_until` columns. A replica claims due rows (on
PostgreSQL with FOR UPDATE SKIP LOCKED; on SQLite inside a write transaction that begins
immediately, so claims are serialised), does the work, and records its progress only while
the row is still leased to it. A replica that dies leaves leases that run out, and another
takes the rows over; a lease that ran out but was not taken over is still its owner's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, or_, update
from sqlmodel import Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from storage.db import is_sqlite

Row = TypeVar("Row", bound=SQLModel)
Work = TypeVar("Work")


def free(model: type[SQLModel], now: datetime) -> ColumnElement[bool]:
    """Rows nobody holds: never leased, or their lease ran out."""
    until = col(model.lease_until)  # type: ignore[attr-defined]
    return or_(until.is_(None), until < now)


def due_query(
    model: type[Row],
    now: datetime,
    limit: int,
    *,
    due: ColumnElement[bool],
    order_by: Any,
    skip_locked: bool,
) -> SelectOfScalar[Row]:
    """The claim's query: rows `due` and free, in `order_by` order, `limit` of them; on
    PostgreSQL (`skip_locked`) FOR UPDATE SKIP LOCKED, so replicas never wait on each other."""
    query = select(model).where(due).where(free(model, now)).order_by(order_by).limit(limit)
    return query.with_for_update(skip_locked=True) if skip_locked else query


def claim(
    session: Session,
    query: SelectOfScalar[Row],
    owner: str,
    now: datetime,
    lease: timedelta,
    read: Callable[[Row], Work],
    *,
    taking: Callable[[Row], None] = lambda _: None,
) -> list[Work]:
    """Lease the rows `query` (a `due_query`) finds to `owner` and return them as `read`
    translates them; commits. `taking` sees each row before its lease is written (a row taken
    over from another replica, say). Rows are read before the commit: after it, each row
    would be loaded again, one SELECT per row claimed."""
    rows = session.exec(query).all()
    claimed = []
    for row in rows:
        taking(row)
        row.lease_owner, row.lease_until = owner, now + lease
        session.add(row)
        claimed.append(read(row))
    session.commit()
    return claimed


def skip_locked(session: Session) -> bool:
    """Whether claims skip rows other replicas hold: on PostgreSQL; SQLite serialises writers
    with its immediate write transactions instead."""
    return not is_sqlite(session.get_bind())


def record(
    session: Session, model: type[SQLModel], key: ColumnElement[bool], owner: str, **values: Any
) -> bool:
    """Write `values` to the row only while it is leased to `owner`; False if it was taken
    over. Commits."""
    written = write(session, model, key, owner, **values)
    session.commit()
    return written


def write(
    session: Session, model: type[SQLModel], key: ColumnElement[bool], owner: str, **values: Any
) -> bool:
    """`record` without the commit, for a caller with more to write in the same transaction."""
    held = and_(key, col(model.lease_owner) == owner)  # type: ignore[attr-defined]
    # On the table, not the model: an ORM-enabled UPDATE costs several times a plain one, and
    # nothing in the session is kept in step with it anyway (no objects are loaded here).
    table = model.__table__  # type: ignore[attr-defined]
    result = session.execute(update(table).where(held).values(**values))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release_all(session: Session, model: type[SQLModel], owner: str, **values: Any) -> int:
    """On shutdown: hand every lease back (with `values`, if the work needs more said), so
    another replica takes the work over at once."""
    result = session.execute(
        update(model)
        .where(col(model.lease_owner) == owner)  # type: ignore[attr-defined]
        .values(lease_owner="", lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
