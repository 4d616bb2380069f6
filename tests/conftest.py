"""Databases for the tests: a fresh, migrated one per test, on SQLite and on PostgreSQL.

Tests that take `engine` or `database_url` run once on each engine. The PostgreSQL run uses
the server at CHANGEBOT_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test),
skips saying why when none is reachable, and fails instead with CHANGEBOT_REQUIRE_POSTGRES=1.

Migrating takes longer than copying, so each engine is migrated once per session into a
template (a database file for SQLite, a template database for PostgreSQL), and every test
gets its own copy of it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from storage import migrate
from storage.db import make_engine, normalise_url

POSTGRES_URL_VARIABLE = "CHANGEBOT_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_VARIABLE = "CHANGEBOT_REQUIRE_POSTGRES"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
#: Where the server keeps its own database when the configured one does not exist yet.
MAINTENANCE_DATABASE = "postgres"


def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def _admin_engine(url: URL) -> Engine:
    """An engine for CREATE and DROP DATABASE (which refuse to run in a transaction)."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect():
            return admin
    except OperationalError:
        admin.dispose()
        raise


class PostgresServer:
    """A PostgreSQL server on which tests create and drop databases of their own.

    Creating a database from the template takes a few tenths of a second of the server's time,
    so the next one is made in the background while a test runs, and used ones are dropped in
    the background too.
    """

    def __init__(self, url: URL, admin: Engine) -> None:
        self.url = url
        self.admin = admin
        self._template: str | None = None
        self._template_lock = threading.Lock()
        self._background = ThreadPoolExecutor(2, thread_name_prefix="test-databases")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []

    @classmethod
    def connect(cls, configured: str) -> PostgresServer:
        """The server at `configured`, or OperationalError if it cannot be reached."""
        url = make_url(normalise_url(configured))
        try:
            return cls(url, _admin_engine(url))
        except OperationalError as error:
            if "does not exist" not in str(error):
                raise
        return cls(url, _admin_engine(url.set(database=MAINTENANCE_DATABASE)))

    def url_of(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def migrated_database(self) -> str:
        """A new database copied from the migrated template (and the next one on its way)."""
        ready = self._next or self._background.submit(self._create, migrated=True)
        self._next = self._background.submit(self._create, migrated=True)
        return ready.result()

    def empty_database(self) -> str:
        return self._create(migrated=False)

    def discard(self, name: str) -> None:
        self._drops.append(self._background.submit(self._drop, name))

    def close(self) -> None:
        if self._next is not None:
            self.discard(self._next.result())
        self._background.shutdown(wait=True)
        try:
            for dropped in self._drops:
                dropped.result()  # a failed drop is reported, not lost
        finally:
            if self._template is not None:
                self._drop(self._template)
            self.admin.dispose()

    def _create(self, *, migrated: bool) -> str:
        name = f"cb_test_{secrets.token_hex(6)}"
        template = self._migrated_template() if migrated else "template0"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def _drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _migrated_template(self) -> str:
        with self._template_lock:
            if self._template is None:
                name = f"cb_tmpl_{secrets.token_hex(6)}"
                self._execute(f'CREATE DATABASE "{name}" TEMPLATE "template0"')
                try:
                    # Migrated with every connection closed again: a template must have none.
                    _migrate(self.url_of(name))
                except BaseException:
                    self._drop(name)
                    raise
                self._template = name
        return self._template

    def _execute(self, statement: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(statement))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    configured = os.environ.get(POSTGRES_URL_VARIABLE, "").strip() or DEFAULT_POSTGRES_URL
    try:
        server = PostgresServer.connect(configured)
    except OperationalError as error:
        where = make_url(normalise_url(configured)).render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        message = f"PostgreSQL not reachable at {where} ({reason}): set {POSTGRES_URL_VARIABLE}"
        if os.environ.get(REQUIRE_POSTGRES_VARIABLE, "").strip() not in ("", "0"):
            pytest.fail(f"{message} ({REQUIRE_POSTGRES_VARIABLE} is set)", pytrace=False)
        pytest.skip(message)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database file to copy; its WAL is folded in once its engine closes."""
    path = tmp_path_factory.mktemp("sqlite-template") / "changebot.db"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The database engine a test runs on; every test using a database runs on both."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh database at the current schema, for this test alone."""
    if backend == "sqlite":
        path = tmp_path / "changebot.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.migrated_database()
    try:
        yield server.url_of(name)
    finally:
        server.discard(name)


@pytest.fixture
def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """The URL of a database with no schema at all, as a new installation finds it."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.empty_database()
    try:
        yield server.url_of(name)
    finally:
        server.discard(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on this test's fresh database, disposed before the database is dropped."""
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


# -- a real browser ----------------------------------------------------------------------------

REQUIRE_BROWSER_VARIABLE = "CHANGEBOT_REQUIRE_BROWSER"
#: Debian's package; CI installs it (.ci/run).
BROWSERS = ("chromium", "chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium from the operating system's packages; the test
    skips saying why when there is none, and fails instead with CHANGEBOT_REQUIRE_BROWSER=1."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        message = "Chromium is not installed (apt-get install -y chromium)"
        if os.environ.get(REQUIRE_BROWSER_VARIABLE, "").strip() not in ("", "0"):
            pytest.fail(f"{message} ({REQUIRE_BROWSER_VARIABLE} is set)", pytrace=False)
        pytest.skip(message)
    return found
