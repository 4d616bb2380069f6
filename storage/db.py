"""Engines: SQLite as the embedded default, PostgreSQL for several replicas.

SQLite is set up for safe concurrent use: WAL (readers never block the writer), a busy
timeout (writers queue instead of failing), and write transactions that begin immediately
(two writers never both read, then both fail to upgrade their lock).
"""

from __future__ import annotations

import select
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlmodel import create_engine

DEFAULT_URL = "sqlite:///changebot.db"
BUSY_TIMEOUT_MS = 10_000


class DatabaseUrlError(ValueError):
    """DATABASE_URL is not something changebot can use."""


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (`postgres://`, `postgresql://`) and pick the driver."""
    url = url.strip() or DEFAULT_URL
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:  # ValueError: a port that is not a number
        raise DatabaseUrlError(
            f"DATABASE_URL is not a database URL (expected e.g. {DEFAULT_URL} or "
            "postgresql://user@host:5432/dbname)"
        ) from error
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise DatabaseUrlError(
        f"DATABASE_URL uses {backend!r}; changebot runs on SQLite (sqlite:///changebot.db) "
        "or PostgreSQL (postgresql://...)"
    )


SQLITE_CACHE_KIB = 1024
#: How SQLite's write transactions begin: taking the write lock at once, so that two writers
#: never both read, then both fail to upgrade their lock.
SQLITE_BEGIN = "IMMEDIATE"


def make_engine(url: str = DEFAULT_URL, **options: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **options)
        _configure_sqlite(engine)
        return engine
    # Several replicas share one server's connections (PostgreSQL allows 100 by default).
    options.setdefault("pool_size", 5)
    options.setdefault("max_overflow", 10)
    engine = create_engine(url, **options)
    if not options.get("pool_pre_ping"):
        event.listen(engine, "checkout", _alive)
    return engine


def _alive(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection is checked before it is handed out, without a round
    trip: one that is idle has nothing to read, unless the server has closed it (a restart,
    `pg_terminate_backend`, an idle timeout: each sends its reason first). Only then is it
    pinged; if that fails, the pool connects anew (DisconnectionError) and the caller never
    sees the old one. SQLAlchemy's own `pool_pre_ping` pings every connection it hands out,
    a round trip before every unit of work. A connection whose network path died without a
    word fails its first statement, as it would have failed the ping."""
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection is closed")
    if not _readable(dbapi_connection.fileno()):
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # the driver's words for a dead connection vary
        raise DisconnectionError(f"the server closed the connection: {error}") from error


def _readable(fd: int) -> bool:
    """Whether the socket has something to read now (it does not wait)."""
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def missing_sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names, if it is not there yet and connecting would create it;
    None for any other database, an in-memory one, a file that exists, or one in a folder
    that does not (connecting fails, creating nothing)."""
    parsed = make_url(normalise_url(url))
    if not parsed.drivername.startswith("sqlite") or "uri" in parsed.query:
        return None
    if parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return path if not path.exists() and path.parent.is_dir() else None


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Each pooled connection keeps its own page cache (2 MiB by default); the operating
        # system caches the file for all of them, so 1 MiB each keeps the process small.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", SQLITE_BEGIN)
        if mode is not None:  # None: the unit of work sends its own (storage/uow.py)
            connection.exec_driver_sql(f"BEGIN {mode}")
