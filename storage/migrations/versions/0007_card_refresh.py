"""A card drawn again by time alone: when break-glass opens, its button appears.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("publications", sa.Column("refresh_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("publications", "refresh_at")
