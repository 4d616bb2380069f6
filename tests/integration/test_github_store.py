"""Deliveries stored by the webhook (storage/github.py `received`): each round of them in a
transaction, a job run again superseding its run's earlier delivery, and the run found
through its index however many deployments GitHub keeps waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlmodel import Session

from bot.github.webhook import parse
from standin.github import protection_rule_request
from storage import github
from storage.db import is_sqlite
from storage.github import GithubDeploymentRow

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
REPOSITORY, ENVIRONMENT = "acme/payments", "production"


def delivery(name: str, run_id: int) -> github.Requested:
    return parse(name, protection_rule_request(REPOSITORY, ENVIRONMENT, run_id))


def store(engine: Engine, *deliveries: github.Requested, at: datetime = AT) -> list[bool]:
    with Session(engine) as session:
        return github.received(session, list(deliveries), at)


def open_deliveries(engine: Engine) -> set[str]:
    row = GithubDeploymentRow
    with Session(engine) as session:
        found = session.execute(select(row.delivery_id).where(row.answered_at.is_(None)))
        return set(found.scalars())


def test_a_job_run_again_supersedes_its_earlier_delivery_and_no_other_run(engine: Engine) -> None:
    assert store(engine, delivery("d-1", 7), delivery("d-2", 8)) == [True, True]
    assert store(engine, delivery("d-3", 7), at=AT + timedelta(minutes=1)) == [True]

    assert open_deliveries(engine) == {"d-2", "d-3"}
    with Session(engine) as session:
        earlier = session.get(GithubDeploymentRow, "d-1")
        assert earlier is not None
        assert earlier.status == github.ANSWERED and earlier.last_error == github.SUPERSEDED


def test_two_deliveries_of_one_run_in_a_round_are_both_kept_and_supersede_the_earlier(
    engine: Engine,
) -> None:
    store(engine, delivery("d-1", 7))
    later = AT + timedelta(minutes=1)
    assert store(engine, delivery("d-2", 7), delivery("d-3", 7), at=later) == [True, True]
    assert open_deliveries(engine) == {"d-2", "d-3"}


def test_a_delivery_seen_before_is_stored_once_and_supersedes_nothing(engine: Engine) -> None:
    store(engine, delivery("d-1", 7))
    assert store(engine, delivery("d-1", 7), delivery("d-1", 7)) == [False, False]
    assert store(engine, delivery("d-2", 9), delivery("d-2", 9)) == [True, False]
    assert open_deliveries(engine) == {"d-1", "d-2"}


def test_a_run_is_found_through_its_index_not_by_reading_every_open_deployment(
    engine: Engine,
) -> None:
    """GitHub keeps a deployment waiting up to 30 days: a round of deliveries must not read
    every open one to supersede its runs' earlier deliveries (SQLite read a statement naming
    all the round's runs at once through the open deployments' index)."""
    store(engine, *(delivery(f"old-{n}", n) for n in range(1, 41)))
    updates: list[tuple[str, Any]] = []

    def seen(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("UPDATE GITHUB_DEPLOYMENTS"):
            updates.append((statement, parameters[0] if many else parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        store(engine, delivery("new-1", 1), delivery("new-2", 2), at=AT + timedelta(minutes=1))
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert updates, "superseding the runs' earlier deliveries ran no UPDATE"
    with engine.connect() as connection:
        for statement, parameters in updates:
            plan = _plan(connection, statement, parameters)
            assert "ix_github_deployments_run" in plan, plan
            assert "ix_github_deployments_open_due_at" not in plan, plan
    assert open_deliveries(engine) >= {"new-1", "new-2"} and "old-1" not in open_deliveries(engine)


def _plan(connection: Any, statement: str, parameters: Any) -> str:
    raw = connection.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        prefix = "EXPLAIN QUERY PLAN " if is_sqlite(connection) else "EXPLAIN "
        cursor.execute(prefix + statement, parameters)
        return "\n".join(str(row[-1] if is_sqlite(connection) else row[0]) for row in cursor)
    finally:
        cursor.close()
        raw.rollback()


def test_on_postgresql_the_statement_psycopg_prepares_still_reads_the_run_index(
    engine: Engine,
) -> None:
    """psycopg prepares a statement it has run five times, and PostgreSQL may then keep one
    plan for every value. Cast to BIGINT, a small run id (sent as a smallint) got a plan that
    read every open deployment."""
    if is_sqlite(engine):
        pytest.skip("PostgreSQL's plans of prepared statements")
    store(engine, *(delivery(f"old-{n}", n) for n in range(1, 41)))
    with engine.connect() as connection:
        for n in range(8):
            with Session(bind=connection) as session:
                github.received(session, [delivery(f"new-{n}", 100 + n)], AT)
        raw = connection.connection.dbapi_connection
        cursor = raw.cursor()
        cursor.execute(
            "SELECT name, cardinality(parameter_types) FROM pg_prepared_statements "
            "WHERE statement LIKE 'UPDATE github_deployments%%'"
        )
        prepared = cursor.fetchall()
        assert prepared, "psycopg prepared no UPDATE of github_deployments"
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        for name, count in prepared:
            cursor.execute(f"EXPLAIN EXECUTE {name}({', '.join(['NULL'] * count)})")
            plan = "\n".join(row[0] for row in cursor)
            assert "ix_github_deployments_run" in plan, plan
        raw.rollback()
