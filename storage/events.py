"""Events API deliveries already handled, so that Slack's retries of them are not handled again.

Slack retries an event it thinks went unanswered (`X-Slack-Retry-Num`), with the same
`event_id`. Each replica records the event_id before handling an event; the primary key makes
exactly one delivery the first, on SQLite and on PostgreSQL alike. A retry of an event never
recorded is a first delivery and is handled.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col

from storage.db import is_sqlite
from storage.tables import _when

#: How long an event_id is remembered; Slack gives up retrying within minutes.
REMEMBERED = timedelta(days=1)


class ProcessedEventRow(SQLModel, table=True):
    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True, max_length=100)
    received_at: datetime = _when(index=True)


def first_delivery(session: Session, event_id: str, at: datetime) -> bool:
    """Record the event as handled: True the first time, False for any delivery after it."""
    dialect = sqlite if is_sqlite(session.get_bind().engine) else postgresql
    statement = (
        dialect.insert(ProcessedEventRow)
        .values(event_id=event_id, received_at=at)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(col(ProcessedEventRow.event_id))
    )
    inserted = session.exec(statement).first() is not None
    session.commit()
    return inserted


def forget_before(session: Session, before: datetime) -> int:
    """Drop the event_ids received before `before`; Slack will not retry them any more."""
    statement = delete(ProcessedEventRow).where(col(ProcessedEventRow.received_at) < before)
    deleted = session.exec(statement).rowcount
    session.commit()
    return int(deleted)
