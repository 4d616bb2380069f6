"""GitHub's deployments found by their run: a job run again (the same run, a new delivery)
retires the requests of its earlier attempts, which GitHub no longer waits on.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_github_deployments_run", "github_deployments", ["repository", "run_id", "environment"]
    )


def downgrade() -> None:
    op.drop_index("ix_github_deployments_run", table_name="github_deployments")
