"""The tables. A change is one row: indexed columns for the questions asked of many changes,
and a JSON document for the rest of it, translated explicitly in storage/rows.py."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from storage import driver
from workflows.errors import NotFound, StaleChange


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on every engine: stored in UTC, read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a timestamp without a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_Document = JSON().with_variant(JSONB(), "postgresql")


def _when(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class ChangeRow(SQLModel, table=True):
    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_stage_number", "stage", "number"),
        # A form Slack sends twice makes one change (several NULLs are allowed, on both).
        Index("ux_changes_form_id", "form_id", unique=True),
    )

    number: int | None = Field(default=None, primary_key=True)
    version: int = 0
    stage: str = Field(max_length=20)
    classification: str = Field(max_length=20)
    title: str = Field(max_length=300)
    requester: str = Field(max_length=40, index=True)
    implementer: str = Field(default="", max_length=40, index=True)
    #: The pull request the change links to, as `owner/repo#n` (see pull_request_key): how a
    #: GitHub deployment of that pull request's commit finds its change.
    pull_request: str = Field(default="", max_length=300, index=True)
    review_owed: bool = Field(default=False)
    review_due_at: datetime | None = _when(nullable=True)
    #: When the outcome was recorded: DORA's metrics read the changes deployed in a period.
    outcome_at: datetime | None = _when(nullable=True, index=True)
    created_at: datetime = _when()
    updated_at: datetime | None = _when(nullable=True)
    document: dict[str, Any] = Field(sa_column=Column(_Document, nullable=False))
    #: The request form's view id it came from (None for changes made otherwise).
    form_id: str | None = Field(default=None, max_length=40)


class AuditEventRow(SQLModel, table=True):
    """Append-only: on PostgreSQL, triggers refuse UPDATE, DELETE and TRUNCATE."""

    __tablename__ = "audit_events"
    # A change's events in order: what the publisher reads after the last one it showed.
    __table_args__ = (Index("ix_audit_events_ref_seq", "ref", "seq"),)

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = _when()
    actor: str = Field(max_length=40)
    action: str = Field(max_length=60)
    ref: str = Field(max_length=20)  # indexed with seq (above)
    from_stage: str = Field(max_length=20)
    to_stage: str = Field(max_length=20)
    details: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHeadRow(SQLModel, table=True):
    """The latest event of the chain; locked while an event is appended, so that concurrent
    writers on several replicas extend the chain one after the other."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)


class ScheduleRow(SQLModel, table=True):
    """Where changes sit in time: a row for each service a change names and each week its
    window touches (workflows/schedule.py), kept with the change by its repository; a change
    that names none has a row a week on the empty service, which no service's filter finds.
    The calendar reads a span's weeks; the conflict check reads the weeks of one window on a
    few services, among the changes that still occupy their windows."""

    __tablename__ = "schedule"
    __table_args__ = (
        # A span's weeks, and in each the windows that end after the span starts.
        Index("ix_schedule_week_ends", "week", "ends_at"),
        # The open bookings alone, by service: what a conflict check reads. The predicate is
        # written as each engine renders `WHERE occupies`, so the planner can match the two.
        Index(
            "ix_schedule_occupying",
            "service",
            "week",
            sqlite_where=text("occupies = 1"),
            postgresql_where=text("occupies"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(index=True)
    service: str = Field(max_length=100)
    week: int
    starts_at: datetime = _when()
    ends_at: datetime = _when()
    occupies: bool


def compare_and_set(
    session: Any, row: Any, number: int, version: int, values: dict[str, Any], what: str, ref: str
) -> None:
    """Write `values` to the `row` table's record `number` if it is still at `version`, and
    move it to the next: a write based on an older read is refused (StaleChange), one about
    a record that is gone too (NotFound). One statement handed to the driver (every step of
    every change, and a gate's first answer, runs it); nothing in the session is kept in
    step with it, so the session is expired after it."""
    table: Table = row.__table__
    dialect = session.get_bind().dialect
    names = tuple(values)
    sql = _compare_and_set(table.name, names)
    params = [driver.binding(table.c[name], dialect)(values[name]) for name in names]
    written = driver.rows(session, sql, [*params, number, version])
    session.expire_all()
    if not written:
        current = session.get(row, number)
        if current is None:
            raise NotFound(what, ref)
        raise StaleChange(ref, version, current.version)


@cache
def _compare_and_set(table: str, names: tuple[str, ...]) -> str:
    """compare_and_set's statement for a table and the columns written, built once; a row
    back says it was written."""
    columns = ", ".join(f"{name} = ?" for name in names)
    return (
        f"UPDATE {table} SET version = version + 1, {columns} "
        "WHERE number = ? AND version = ? RETURNING version"
    )
