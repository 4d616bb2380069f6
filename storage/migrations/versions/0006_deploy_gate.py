"""The deploy gate: API tokens for pipelines, GitHub deployments held for an answer, and the
pull request each change links to, indexed, so a GitHub deployment finds its change.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
import re

import sqlalchemy as sa
from alembic import op

from storage.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As workflows.model.pull_request_key was when this migration was written: a migration's
# result must not change when the code does.
_PULL_REQUEST = re.compile(r"^https?://[^/\s]+/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/pulls?/([0-9]+)")
BATCH = 1000


def _key(url: str) -> str:
    found = _PULL_REQUEST.match(url.strip())
    if not found:
        return ""
    owner, repository, number = found.groups()
    return f"{owner}/{repository}#{int(number)}".lower()


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(30), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(100), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(80), nullable=False),
    )
    op.create_index(
        "ux_api_tokens_active_name",
        "api_tokens",
        ["name"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "github_deployments",
        sa.Column("delivery_id", sa.String(100), primary_key=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("repository", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(255), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("sha", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("sender", sa.String(100), nullable=False),
        sa.Column("pull_requests", sa.Text(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("answer_state", sa.String(20), nullable=False),
        sa.Column("answer_comment", sa.Text(), nullable=False),
        sa.Column("reported_waiting", sa.Boolean(), nullable=False),
        sa.Column("change_version", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(80), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=False),
    )
    op.create_index(
        "ix_github_deployments_open_due_at",
        "github_deployments",
        ["due_at"],
        sqlite_where=sa.text("answered_at IS NULL"),
        postgresql_where=sa.text("answered_at IS NULL"),
    )
    # Plain ALTER TABLE on both engines (SQLite has had ADD and DROP COLUMN since 3.35): a
    # batch copy of `changes` would trip the foreign keys that point at it.
    op.add_column(
        "changes", sa.Column("pull_request", sa.String(300), nullable=False, server_default="")
    )
    op.create_index("ix_changes_pull_request", "changes", ["pull_request"])
    _fill_pull_requests()


def _fill_pull_requests() -> None:
    connection = op.get_bind()
    changes = sa.table(
        "changes",
        sa.column("number", sa.Integer()),
        sa.column("document", sa.JSON()),
        sa.column("pull_request", sa.String()),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(changes.c.number, changes.c.document)
            .where(changes.c.number > last)
            .order_by(changes.c.number)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for number, document in rows:
            if isinstance(document, str):
                document = json.loads(document)
            key = _key(document["details"]["links"]["pull_request"])
            if key:
                connection.execute(
                    changes.update().where(changes.c.number == number).values(pull_request=key)
                )
        last = rows[-1].number


def downgrade() -> None:
    op.drop_index("ix_changes_pull_request", "changes")
    op.drop_column("changes", "pull_request")
    op.drop_index("ix_github_deployments_open_due_at", "github_deployments")
    op.drop_table("github_deployments")
    op.drop_index("ux_api_tokens_active_name", "api_tokens")
    op.drop_table("api_tokens")
