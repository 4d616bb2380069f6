"""The chaser's claim reads only open obligations: index next_at for those alone.

The index on every obligation's next_at made the claim walk all settled ones (their next_at
lies in the past) before the first due open one: its cost grew with the years of history.
Every query ordering by next_at asks for open obligations, so the full index is replaced.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_obligations_open_next_at",
        "obligations",
        ["next_at"],
        sqlite_where=sa.text("settled_at IS NULL"),
        postgresql_where=sa.text("settled_at IS NULL"),
    )
    op.drop_index("ix_obligations_next_at", "obligations")


def downgrade() -> None:
    op.create_index("ix_obligations_next_at", "obligations", ["next_at"])
    op.drop_index("ix_obligations_open_next_at", "obligations")
