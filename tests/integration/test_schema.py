"""The migrations build exactly the tables the code declares, on SQLite and PostgreSQL alike:
a table or column added to the code without its migration fails here, not in production."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Boolean, Column, Engine, Integer, MetaData, String, Table, insert, text
from sqlmodel import SQLModel

import storage.digests
import storage.events
import storage.github
import storage.obligations
import storage.outbox
import storage.proposals
import storage.tables
import storage.tokens  # noqa: F401  (every table on SQLModel.metadata)
from storage import migrate
from storage.db import make_engine
from storage.rows import change_document
from storage.tables import UTCDateTime
from tests.integration.changes import an_old_row, request
from tests.unit.builders import normal_details
from tests.unit.fakes import FakeClock
from workflows.model import Change

CREATED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
#: The changes table as migration 0005 left it (before the pull_request column).
_CHANGES_0005 = Table(
    "changes",
    MetaData(),
    Column("number", Integer, primary_key=True),
    Column("version", Integer),
    Column("stage", String),
    Column("classification", String),
    Column("title", String),
    Column("requester", String),
    Column("implementer", String),
    Column("review_owed", Boolean),
    Column("review_due_at", UTCDateTime()),
    Column("created_at", UTCDateTime()),
    Column("updated_at", UTCDateTime()),
    Column("document", JSON),
)


def test_the_migrated_schema_is_the_one_the_code_declares(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "compare_server_default": False}
        )
        differences = compare_metadata(context, SQLModel.metadata)

    # alembic_version is alembic's own table, not the code's.
    assert [d for d in differences if "alembic_version" not in repr(d)] == []


def test_upgrading_finds_the_pull_request_each_existing_change_links_to(
    empty_database_url: str,
) -> None:
    engine = make_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0005")
        document = change_document(Change(1, normal_details(), "UALICE", CREATED))
        document["details"]["links"]["pull_request"] = "https://github.com/Acme/Payments/pull/42"
        with engine.begin() as connection:
            for number, doc in (
                (1, document),
                (2, change_document(Change(2, normal_details(), "UALICE", CREATED))),
            ):
                connection.execute(
                    insert(_CHANGES_0005).values(an_old_row(number, "review", doc, CREATED))
                )

        migrate.upgrade(engine)

        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT number, pull_request FROM changes ORDER BY number")
            ).all()
        assert [tuple(row) for row in found] == [(1, "acme/payments#42"), (2, "")]
    finally:
        engine.dispose()


def test_the_latest_migrations_go_down_and_up_again(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    try:
        migrate.upgrade(engine)
        request(engine, FakeClock())  # a change, and its publication pointing at it
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")  # through every migration since
        assert migrate.status(engine).current == "0005"
        assert migrate.upgrade(engine).is_current
    finally:
        engine.dispose()


def test_upgrading_forgets_what_a_held_run_was_told_and_downgrading_keeps_whether_it_was(
    empty_database_url: str,
) -> None:
    engine = make_engine(empty_database_url)
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    try:
        migrate.upgrade(engine, "0015")
        with engine.begin() as connection:
            for delivery, reported in (("told", True), ("untold", False)):
                connection.execute(
                    insert(_GITHUB_0015).values(_a_held_deployment(delivery, reported))
                )

        migrate.upgrade(engine)
        # What a run was told before is not known: its next decision tells it once more.
        assert _column(engine, "reported_comment") == [("told", ""), ("untold", "")]
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE github_deployments SET reported_comment = 'Waits for review.' "
                    "WHERE delivery_id = 'told'"
                )
            )
            config.attributes["connection"] = connection
            command.downgrade(config, "0015")

        assert _column(engine, "reported_waiting") == [("told", True), ("untold", False)]
    finally:
        engine.dispose()


#: The github_deployments columns without defaults, as migration 0015 left them.
_GITHUB_0015 = Table(
    "github_deployments",
    MetaData(),
    Column("delivery_id", String, primary_key=True),
    Column("received_at", UTCDateTime()),
    Column("repository", String),
    Column("environment", String),
    Column("run_id", Integer),
    Column("installation_id", Integer),
    Column("sha", String),
    Column("ref", String),
    Column("sender", String),
    Column("pull_requests", String),
    Column("status", String),
    Column("decision", String),
    Column("answer_state", String),
    Column("answer_comment", String),
    Column("reported_waiting", Boolean),
    Column("change_version", Integer),
    Column("attempts", Integer),
    Column("lease_owner", String),
    Column("last_error", String),
)


def _a_held_deployment(delivery: str, reported: bool) -> dict[str, object]:
    return {
        "delivery_id": delivery,
        "received_at": CREATED,
        "repository": "acme/payments",
        "environment": "production",
        "run_id": 1001,
        "installation_id": 1,
        "sha": "",
        "ref": "CHG-1",
        "sender": "octocat",
        "pull_requests": "[]",
        "status": "awaiting",
        "decision": "awaiting",
        "answer_state": "",
        "answer_comment": "",
        "reported_waiting": reported,
        "change_version": 1,
        "attempts": 0,
        "lease_owner": "",
        "last_error": "",
    }


def _column(engine: Engine, name: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        found = connection.execute(
            text(f"SELECT delivery_id, {name} FROM github_deployments ORDER BY delivery_id")
        ).all()
    return [tuple(row) for row in found]
