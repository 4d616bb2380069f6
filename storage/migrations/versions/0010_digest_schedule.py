"""The audit trail's signed digests: when the next is due, and the replica writing it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.tables import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schedule = op.create_table(
        "digest_schedule",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("next_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(80), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
    )
    # One row, there from the start: replicas race to lease it, never to insert it.
    op.bulk_insert(schedule, [{"id": 1, "next_at": None, "lease_owner": "", "lease_until": None}])


def downgrade() -> None:
    op.drop_table("digest_schedule")
