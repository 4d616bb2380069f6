"""Publications: what Slack must still be shown, per change.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "publications",
        sa.Column("number", sa.Integer(), sa.ForeignKey("changes.number"), primary_key=True),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("thread_ts", sa.String(40), nullable=False),
        sa.Column("card_version", sa.Integer(), nullable=False),
        sa.Column("published_seq", sa.Integer(), nullable=False),
        sa.Column("effect_index", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(80), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=False),
    )
    op.create_index("ix_publications_due_at", "publications", ["due_at"])
    op.create_index("ix_audit_events_ref_seq", "audit_events", ["ref", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_ref_seq", "audit_events")
    op.drop_table("publications")
