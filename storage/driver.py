"""Statements the deploy gate runs in every round, handed to the database's driver as they are.

SQLAlchemy's execution of a statement (its compiled form looked up, the parameters built, an
execution context and a result made, its events fired) costs tens of microseconds of the
interpreter before the driver sees the SQL, more than SQLite itself takes to answer the
gate's small statements. A round of questions runs a handful of them, whatever its size: the
versions of the changes asked about, the audit chain's head, the events, the new head. These
are written here once, in the driver's own parameter style, and run on the connection of the
caller's transaction (its session's), so they commit or roll back with everything else.

Statements that need not wait for each other's answers are run `together`: on PostgreSQL,
in one round trip to the server (psycopg's pipeline mode) where one each would cost a round
trip apiece. A round of the gate makes two round trips, its reads with its BEGIN and its
writes with its COMMIT (bot/api/desk.py, storage/uow.py), where it made eight: each is time
on the network, and a hand-over of the interpreter between the event loop and the thread
waiting on the database.

They are logged as SQLAlchemy logs its own (`echo=True`, or the `sqlalchemy.engine` logger at
INFO): whoever debugs the gate with the engine's echo on sees every statement it runs.

A failure is raised as SQLAlchemy's own (`DBAPIError`), as from any other statement: whoever
catches the database's failures (the gate, failing closed with a 503) catches these too; and
a connection the server dropped is invalidated, as SQLAlchemy does, so the pool never hands
it out again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

Rows = list[tuple[Any, ...]]
#: A statement that finds no rows: what a read of no keys is (`IN ()` is not SQL).
_NOTHING = "SELECT 1 WHERE 1 = 0"


@dataclass
class Statement:
    """A statement to run with others (`together`), written with `?` for each parameter; run
    once with `params`, or once for each of them with `many`. Its rows once run."""

    sql: str
    params: Any = ()
    many: bool = False
    rows: Rows | None = field(default=None, compare=False)


def rows(session: Session, sql: str, params: Sequence[Any] = ()) -> Rows:
    """`sql`, written with `?` for each parameter, run in the session's transaction; its rows
    (none for a statement that returns none). What the session holds unwritten is written
    first, as SQLAlchemy's own statements do (autoflush), so the statement sees it."""
    connection = _flushed(session)
    return run(connection, _styled(connection, sql), params)


def together(session: Session, statements: Sequence[Statement]) -> None:
    """`statements` run in the session's transaction, in order, each one's rows put in its
    `rows`: on PostgreSQL in one round trip to the server; elsewhere one after the other. One
    that fails fails them all, raised as SQLAlchemy's `DBAPIError` (what ran before it is in
    the transaction, to be rolled back with it, as after any failed statement)."""
    if not statements:
        return
    connection = _flushed(session)
    raw = connection.connection.dbapi_connection
    if len(statements) == 1 or not _pipelines(connection):  # one alone needs no pipeline
        for statement in statements:
            sql = _styled(connection, statement.sql)
            statement.rows = run(connection, sql, statement.params, many=statement.many)
        return
    assert raw is not None, "the connection was closed"
    logger = connection.engine.logger
    styled = [_styled(connection, statement.sql) for statement in statements]
    # A failure shows when the answers come, all at once: it names every statement (the
    # driver's message says what failed).
    failed = ";\n".join(styled), (), False
    cursors = []
    with _raised(connection, lambda: failed):
        try:
            with raw.pipeline():
                for statement, sql in zip(statements, styled, strict=True):
                    if logger.isEnabledFor(logging.INFO):
                        _echo(logger, connection, sql, statement.params, statement.many)
                    cursor = raw.cursor()
                    cursors.append(cursor)
                    if statement.many:
                        cursor.executemany(sql, statement.params)
                    else:
                        cursor.execute(sql, statement.params)
            # Leaving the pipeline sends them all and reads every answer (reading one inside it
            # would cost a round trip of its own).
            for statement, cursor in zip(statements, cursors, strict=True):
                found = cursor.description is not None
                statement.rows = list(cursor.fetchall()) if found else []
        finally:
            for cursor in cursors:
                cursor.close()


def _flushed(session: Session) -> Connection:
    if session.new or session.dirty or session.deleted:
        session.flush()
    return session.connection()


def _pipelines(connection: Connection) -> bool:
    """Whether the driver sends several statements in one round trip: psycopg, on a libpq
    that has the pipeline mode (14 and later; psycopg's binary wheels ship one)."""
    return connection.dialect.driver == "psycopg" and _libpq_pipelines()


@functools.cache
def _libpq_pipelines() -> bool:
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def run(connection: Connection, sql: str, params: Any = (), *, many: bool = False) -> Rows:
    """`sql` as the driver takes it (its own parameter style), once, or once for each of
    `params` with `many`."""
    raw = connection.connection.dbapi_connection
    assert raw is not None, "the connection was closed"
    logger = connection.engine.logger
    if logger.isEnabledFor(logging.INFO):
        _echo(logger, connection, sql, params, many)
    cursor = raw.cursor()
    try:
        with _raised(connection, lambda: (sql, params, many), cursor):
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description is not None else []
    finally:
        cursor.close()


@contextmanager
def _raised(connection: Connection, failed: Any, cursor: Any = None) -> Iterator[None]:
    """The driver's error raised as SQLAlchemy's, naming the statement `failed()` gives (its
    parameters hidden); a connection the server dropped invalidated."""
    dialect = connection.dialect
    dbapi = dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as error:
        raw = connection.connection.dbapi_connection
        lost = dialect.is_disconnect(error, raw, cursor)
        if lost:
            connection.invalidate(error)
        sql, params, many = failed()
        raise DBAPIError.instance(
            sql,
            params,
            error,
            dbapi.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=dialect,
            ismulti=many,
        ) from error


def _echo(logger: Any, connection: Connection, sql: str, params: Any, many: bool) -> None:
    """The statement and its parameters as SQLAlchemy's echo shows its own (parameters hidden
    where the engine hides them), marked as sent to the driver directly."""
    logger.info("[driver] %s", sql)
    if connection.engine.hide_parameters:
        logger.info("[driver] [SQL parameters hidden due to hide_parameters=True]")
    else:
        logger.info("[driver] %s", _shown(params, many))


#: Parameter sets of an executemany shown in the log, at most (as SQLAlchemy's echo shows).
SHOWN_ROWS = 10


def _shown(params: Any, many: bool) -> str:
    if not many:
        return repr(params)
    rows = list(params[:SHOWN_ROWS])
    more = len(params) - len(rows)
    return repr(rows) + (f" ... and {more} more" if more > 0 else "")


def _styled(connection: Connection, sql: str) -> str:
    """`sql` with `?` placeholders, in the dialect's parameter style (SQLite's is `?`;
    psycopg's `%s`)."""
    style = connection.dialect.paramstyle
    return sql if style == "qmark" else _in_style(style, sql)


@functools.lru_cache(maxsize=512)
def _in_style(style: str, sql: str) -> str:
    if style not in ("format", "pyformat"):
        raise NotImplementedError(f"no driver statements for the {style} parameter style")
    return sql.replace("%", "%%").replace("?", "%s")


def binding(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """How a value of `column` goes to this dialect's driver: through the column's own type,
    as SQLAlchemy would send it (a moment as SQLite's text, a document as JSON)."""
    key = (column.table.name, column.name, dialect.name)
    found = _BINDING.get(key)
    if found is None:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        found = _BINDING[key] = process or _as_it_is
    return found


def reading(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """How a value of `column`, as this dialect's driver hands it back, is read: through the
    column's own type, as SQLAlchemy would read it."""
    key = (column.table.name, column.name, dialect.name)
    found = _READING.get(key)
    if found is None:
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        found = _READING[key] = process or _as_it_is
    return found


def _as_it_is(value: Any) -> Any:
    return value


#: Made once for each column and dialect (by their names).
_BINDING: dict[tuple[str, str, str], Callable[[Any], Any]] = {}
_READING: dict[tuple[str, str, str], Callable[[Any], Any]] = {}


def keyed(sql: str, keys: Iterable[Any]) -> Statement:
    """`sql`, whose `IN ({})` takes `keys` (each once, in order), as a statement to run; for
    no keys, one that finds nothing."""
    wanted = sorted(set(keys))
    return Statement(in_list(sql, len(wanted)), wanted) if wanted else Statement(_NOTHING)


@functools.lru_cache(maxsize=512)
def in_list(sql: str, count: int) -> str:
    """`sql` with its `{}` made a list of `count` placeholders, for `IN ({})`: written once
    for each size a round asks about."""
    return sql.format(", ".join("?" * count))
