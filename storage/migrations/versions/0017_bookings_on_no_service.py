"""The change calendar holds the changes that name no service (an emergency declared
mid-incident may have a window and none): a row for each week the window touches, on the empty
service, which no service's filter finds. Books those that existed before, which had no rows.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from storage.tables import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# As workflows.schedule and storage.repositories were when this migration was written: a
# migration's result must not change when the code does.
EPOCH = datetime(1970, 1, 5, tzinfo=UTC)
WEEK = timedelta(days=7)
FINAL = ("closed", "cancelled")
UNNAMED = ""
BATCH = 1000

_CHANGES = sa.table(
    "changes",
    sa.column("number", sa.Integer()),
    sa.column("stage", sa.String()),
    sa.column("document", sa.JSON()),
)
_SCHEDULE = sa.table(
    "schedule",
    sa.column("number", sa.Integer()),
    sa.column("service", sa.String()),
    sa.column("week", sa.Integer()),
    sa.column("starts_at", UTCDateTime()),
    sa.column("ends_at", UTCDateTime()),
    sa.column("occupies", sa.Boolean()),
)


def upgrade() -> None:
    connection = op.get_bind()
    # Every change booked before names a service: only those with no rows are read.
    booked = sa.select(_SCHEDULE.c.number).where(_SCHEDULE.c.number == _CHANGES.c.number)
    last = 0
    while True:
        rows = connection.execute(
            sa.select(_CHANGES.c.number, _CHANGES.c.stage, _CHANGES.c.document)
            .where(_CHANGES.c.number > last)
            .where(_CHANGES.c.stage != "cancelled")
            .where(~booked.exists())
            .order_by(_CHANGES.c.number)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        found = [row for number, stage, document in rows for row in _rows(number, stage, document)]
        if found:
            connection.execute(_SCHEDULE.insert(), found)
        last = rows[-1].number


def _rows(number: int, stage: str, document: object) -> list[dict[str, object]]:
    if isinstance(document, str):
        document = json.loads(document)
    assert isinstance(document, dict)
    window = document["details"]["window"]
    if not window or document["details"]["services"]:
        return []
    start, end = (datetime.fromisoformat(t) for t in window)
    occupies = stage not in FINAL and document.get("outcome") is None
    first = (start - EPOCH) // WEEK
    last = max(first, (end - timedelta(microseconds=1) - EPOCH) // WEEK)
    return [
        {
            "number": number,
            "service": UNNAMED,
            "week": week,
            "starts_at": start,
            "ends_at": end,
            "occupies": occupies,
        }
        for week in range(first, last + 1)
    ]


def downgrade() -> None:
    op.execute(_SCHEDULE.delete().where(_SCHEDULE.c.service == UNNAMED))
