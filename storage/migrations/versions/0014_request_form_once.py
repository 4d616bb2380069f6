"""A change remembers the request form it came from, uniquely: a form Slack sends twice (its
Submit retried after a slow answer) made two changes; now the second finds the first.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("changes", sa.Column("form_id", sa.String(40), nullable=True))
    op.create_index("ux_changes_form_id", "changes", ["form_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_changes_form_id", table_name="changes")
    op.drop_column("changes", "form_id")
