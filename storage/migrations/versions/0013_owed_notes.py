"""A publication remembers the note it still owes after posting a card: the requester's
confirmation (with the card's link) or, for a card posted again because it was deleted in
Slack, the note saying so. Until now that one message was sent after the card's position
was recorded, and lost if its send failed: the retry found the card posted and went on.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both engines (SQLite has had ADD and DROP COLUMN since 3.35).
    op.add_column(
        "publications", sa.Column("owed", sa.String(20), nullable=False, server_default="")
    )


def downgrade() -> None:
    op.drop_column("publications", "owed")
