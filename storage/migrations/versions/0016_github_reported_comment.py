"""A held GitHub deployment remembers the status report GitHub last took on its run, not only
that one was made: a new report is sent whenever what the run waits for changes (review done,
test evidence, an approval, a window or a freeze), and only then. Until now the first report
was the only one, and went stale while the run waited.

A deployment already waiting when this runs has no report remembered: the next time it is
decided, its run is told once what it waits for now.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both engines (SQLite has had ADD and DROP COLUMN since 3.35).
    op.add_column(
        "github_deployments",
        sa.Column("reported_comment", sa.Text(), nullable=False, server_default=""),
    )
    op.drop_column("github_deployments", "reported_waiting")


def downgrade() -> None:
    op.add_column(
        "github_deployments",
        sa.Column("reported_waiting", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    deployments = sa.table(
        "github_deployments",
        sa.column("reported_waiting", sa.Boolean()),
        sa.column("reported_comment", sa.Text()),
    )
    op.execute(
        deployments.update()
        .where(deployments.c.reported_comment != "")
        .values(reported_waiting=True)
    )
    op.drop_column("github_deployments", "reported_comment")
