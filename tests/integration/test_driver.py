"""Statements handed to the driver directly (storage/driver.py) show where SQLAlchemy's own
do: whoever turns the engine's logging on sees every statement the gate runs."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import Session

from storage import driver
from storage.db import make_engine

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
