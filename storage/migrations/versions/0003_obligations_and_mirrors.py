"""Obligations to chase, and a second copy of an emergency card in the incident channel.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "obligations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(40), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("snoozed_until", UTCDateTime(), nullable=True),
        sa.Column("settled_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(80), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_obligations_next_at", "obligations", ["next_at"])
    op.create_index(
        "ux_obligations_open",
        "obligations",
        ["kind", "number"],
        unique=True,
        sqlite_where=sa.text("settled_at IS NULL"),
        postgresql_where=sa.text("settled_at IS NULL"),
    )
    with op.batch_alter_table("publications") as table:
        table.add_column(
            sa.Column("mirror_channel", sa.String(40), nullable=False, server_default="")
        )
        table.add_column(sa.Column("mirror_ts", sa.String(40), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("publications") as table:
        table.drop_column("mirror_ts")
        table.drop_column("mirror_channel")
    op.drop_table("obligations")
