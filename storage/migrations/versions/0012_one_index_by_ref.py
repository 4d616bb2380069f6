"""The audit trail keeps one index by change, not two: (ref, seq) answers every question the
index on ref alone answered, and each event written updated both. The gate writes an event
for every question it answers, so that second index was a seventh of its work.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_audit_events_ref", table_name="audit_events")


def downgrade() -> None:
    op.create_index("ix_audit_events_ref", "audit_events", ["ref"])
