"""Statements handed to the driver directly (storage/driver.py) show where SQLAlchemy's own
do: whoever turns the engine's logging on sees every statement the gate runs."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from storage import driver
from storage.db import make_engine
from tests.integration.wire import CountingProxy

VERSIONS = "SELECT number, version FROM changes WHERE number IN ({})"


def test_a_driver_statement_is_logged_with_its_parameters_when_the_engine_logs(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            driver.rows(session, driver.in_list(VERSIONS, 2), [41, 42])
            assert not [r for r in caplog.records if "[driver]" in r.getMessage()]

            caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
            driver.rows(session, driver.in_list(VERSIONS, 2), [41, 42])
    finally:
        engine.dispose()
    logged = [r.getMessage() for r in caplog.records if "[driver]" in r.getMessage()]
    assert logged[0].startswith("[driver] SELECT number, version FROM changes WHERE number IN (")
    assert logged[1] == "[driver] [41, 42]"


def test_an_engine_that_hides_parameters_hides_them_from_driver_statements_too(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url, hide_parameters=True)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    try:
        with Session(engine) as session:
            driver.rows(session, driver.in_list(VERSIONS, 1), [424242])
    finally:
        engine.dispose()
    logged = " ".join(r.getMessage() for r in caplog.records if "[driver]" in r.getMessage())
    assert "SELECT number, version" in logged
    assert "hidden" in logged and "424242" not in logged


def test_a_driver_executemany_logs_its_first_rows_and_how_many_more(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    try:
        with Session(engine) as session:
            connection = session.connection()
            touch = "UPDATE changes SET version = version WHERE number = ?"
            statement = driver._styled(connection, touch)
            driver.run(connection, statement, [(n,) for n in range(1, 26)], many=True)
    finally:
        engine.dispose()
    logged = [r.getMessage() for r in caplog.records if "[driver]" in r.getMessage()]
    assert logged[1] == "[driver] " + repr([(n,) for n in range(1, 11)]) + " ... and 15 more"


# -- statements together ---------------------------------------------------------------------

TWO_ROWS = "SELECT ? UNION ALL SELECT ?"
NOTHING = "SELECT number FROM changes WHERE number = ?"


def test_statements_together_each_get_their_own_rows_in_order(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            first = driver.Statement(TWO_ROWS, (1, 2))
            none = driver.Statement(NOTHING, (424242,))
            touch = driver.Statement(
                "UPDATE changes SET version = version WHERE number = ?", [(1,), (2,)], many=True
            )
            last = driver.Statement(TWO_ROWS, ("a", "b"))
            driver.together(session, [first, none, touch, last])
    finally:
        engine.dispose()
    assert [list(r) for r in first.rows or []] == [[1], [2]]
    assert (none.rows, touch.rows) == ([], [])
    assert [list(r) for r in last.rows or []] == [["a"], ["b"]]


def test_one_statement_failing_fails_them_together_as_a_database_error(
    database_url: str,
) -> None:
    """Raised as SQLAlchemy's error, as any statement's (the gate answers 503 to it); the
    transaction is rolled back as after any failed statement, and the session goes on."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            head = "SELECT seq FROM audit_head WHERE id = 1"
            statements = [driver.Statement(head), driver.Statement("SELECT * FROM no_such_table")]
            with pytest.raises(DBAPIError) as failed:
                driver.together(session, statements)
            session.rollback()
            after = driver.Statement(TWO_ROWS, (3, 4))
            driver.together(session, [after])
    finally:
        engine.dispose()
    assert "no_such_table" in str(failed.value)
    assert [list(r) for r in after.rows or []] == [[3], [4]]


def test_on_postgresql_statements_together_cost_one_round_trip(
    database_url: str, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("round trips to a database server")
    with CountingProxy(database_url) as proxy:
        engine = make_engine(proxy.url)
        try:
            with Session(engine) as session:
                driver.rows(session, NOTHING, (1,))  # the transaction begun
                proxy.round_trips = 0
                driver.together(session, [driver.Statement(NOTHING, (n,)) for n in range(5)])
                together = proxy.round_trips

                proxy.round_trips = 0
                for n in range(5):
                    driver.rows(session, NOTHING, (n,))
                apart = proxy.round_trips
        finally:
            engine.dispose()
    assert (together, apart) == (1, 5)
