"""When each change's outcome was recorded, as a column with an index: DORA's metrics and the
evidence report read the changes deployed in a period without opening every document.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from storage.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.add_column("changes", sa.Column("outcome_at", UTCDateTime(), nullable=True))
    op.create_index("ix_changes_outcome_at", "changes", ["outcome_at"])
    _fill()


def _fill() -> None:
    connection = op.get_bind()
    changes = sa.table(
        "changes",
        sa.column("number", sa.Integer()),
        sa.column("document", sa.JSON()),
        sa.column("outcome_at", UTCDateTime()),
    )
    fill = (
        changes.update()
        .where(changes.c.number == sa.bindparam("n"))
        .values(outcome_at=sa.bindparam("at"))
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(changes.c.number, changes.c.document)
            .where(changes.c.number > last)
            .order_by(changes.c.number)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        found = [{"n": number, "at": at} for number, document in rows if (at := _at(document))]
        if found:
            connection.execute(fill, found)
        last = rows[-1].number


def _at(document: object) -> datetime | None:
    if isinstance(document, str):
        document = json.loads(document)
    assert isinstance(document, dict)
    value = document.get("outcome_at")
    return datetime.fromisoformat(value) if value else None


def downgrade() -> None:
    op.drop_index("ix_changes_outcome_at", "changes")
    op.drop_column("changes", "outcome_at")
