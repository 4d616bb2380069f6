"""The change calendar: where each change sits in time, indexed by week and by service, so
the calendar and the conflict check read the weeks they ask about, not every change.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from storage.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# As workflows.schedule was when this migration was written: a migration's result must not
# change when the code does.
EPOCH = datetime(1970, 1, 5, tzinfo=UTC)
WEEK = timedelta(days=7)
FINAL = ("closed", "cancelled")
BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "schedule",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("week", sa.Integer(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("occupies", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_schedule_number", "schedule", ["number"])
    op.create_index("ix_schedule_week_ends", "schedule", ["week", "ends_at"])
    op.create_index(
        "ix_schedule_occupying",
        "schedule",
        ["service", "week"],
        sqlite_where=sa.text("occupies = 1"),
        postgresql_where=sa.text("occupies"),
    )
    _fill()


def _fill() -> None:
    connection = op.get_bind()
    changes = sa.table(
        "changes",
        sa.column("number", sa.Integer()),
        sa.column("stage", sa.String()),
        sa.column("document", sa.JSON()),
    )
    schedule = sa.table(
        "schedule",
        sa.column("number", sa.Integer()),
        sa.column("service", sa.String()),
        sa.column("week", sa.Integer()),
        sa.column("starts_at", UTCDateTime()),
        sa.column("ends_at", UTCDateTime()),
        sa.column("occupies", sa.Boolean()),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(changes.c.number, changes.c.stage, changes.c.document)
            .where(changes.c.number > last)
            .order_by(changes.c.number)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        booked = [row for number, stage, document in rows for row in _rows(number, stage, document)]
        if booked:
            connection.execute(schedule.insert(), booked)
        last = rows[-1].number


def _rows(number: int, stage: str, document: object) -> list[dict[str, object]]:
    if isinstance(document, str):
        document = json.loads(document)
    assert isinstance(document, dict)
    window = document["details"]["window"]
    if not window or stage == "cancelled":
        return []
    start, end = (datetime.fromisoformat(t) for t in window)
    occupies = stage not in FINAL and document.get("outcome") is None
    first = (start - EPOCH) // WEEK
    last = max(first, (end - timedelta(microseconds=1) - EPOCH) // WEEK)
    services = dict.fromkeys(s.strip().lower() for s in document["details"]["services"])
    return [
        {
            "number": number,
            "service": service,
            "week": week,
            "starts_at": start,
            "ends_at": end,
            "occupies": occupies,
        }
        for service in services
        for week in range(first, last + 1)
    ]


def downgrade() -> None:
    op.drop_index("ix_schedule_occupying", "schedule")
    op.drop_index("ix_schedule_week_ends", "schedule")
    op.drop_index("ix_schedule_number", "schedule")
    op.drop_table("schedule")
