"""The unit of work: one database transaction per use case, committed together or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from storage import driver
from storage.db import SQLITE_BEGIN, is_sqlite
from storage.obligations import SqlObligations
from storage.proposals import SqlProposals
from storage.repositories import SqlAudit, SqlChanges
from workflows.ports import AuditLog, ChangeRepository, ObligationBook, ProposalRepository


class SqlUnitOfWork:
    changes: ChangeRepository
    audit: AuditLog
    obligations: ObligationBook
    proposals: ProposalRepository

    def __init__(
        self,
        engine: Engine | Connection,
        *,
        seen: tuple[int, str] | None = None,
        sent: bool = False,
    ) -> None:
        """`engine`: where each `with` takes a connection, or the connection to use (whose
        transaction each `with` begins and ends). `seen`: (number, seen_digest) of the change
        as a person was shown it; the step is refused (EditedSince) if the change says
        something else by the time it reads it.

        `sent`: the transaction's BEGIN and COMMIT are sent as statements, with the first
        reads (`reading_ahead`) and with the writes (`commit`), on a connection set up for
        it (`sends_its_transactions`): the gate's. On PostgreSQL each would otherwise cost
        a round trip of its own; on SQLite, SQLAlchemy's own begin and commit cost more of
        the interpreter than the statements. A failure is rolled back as any other (both
        drivers send ROLLBACK whenever the database is in a transaction)."""
        self.engine = engine
        self.seen = seen
        self.sent = sent
        self._begun = False
        self._session: Session | None = None

    def __enter__(self) -> Self:
        self._session = Session(self.engine, expire_on_commit=False)
        self._begun = False
        self._changes = SqlChanges(self._session, self.seen)
        self.changes = self._changes
        self._audit = SqlAudit(self._session, deferred=True)
        self.audit = self._audit
        self.obligations = SqlObligations(self._session)
        self.proposals = SqlProposals(self._session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        try:
            self._session.rollback()
        finally:
            self._session.close()
            self._session = None

    @property
    def session(self) -> Session:
        assert self._session is not None, "use the unit of work inside `with`"
        return self._session

    def reading_ahead(self, numbers: Sequence[int], *, head: bool = True) -> list[driver.Statement]:
        """What the gate reads first in a round: the versions of the changes `numbers` and,
        with `head`, the audit chain's head (locked), to run with other statements
        (`driver.together`: on PostgreSQL, one round trip for all); the repositories take
        them from there. With `sent`, the transaction's BEGIN first."""
        begin = []
        if self.sent and not self._begun:
            begin, self._begun = [driver.Statement(_begin(self.session))], True
        locked = self._audit.reading_head() if head else []
        return [*begin, *self._changes.reading_ahead(numbers), *locked]

    def lock_head(self) -> None:
        """Lock the audit chain's head now (see SqlAudit.lock_head)."""
        self._audit.lock_head()

    def commit(self) -> None:
        writes = self._audit.writing()
        if self.sent:
            assert self._begun, "a unit of work that sends its BEGIN begins with reading_ahead"
            writes.append(driver.Statement("COMMIT"))
        driver.together(self.session, writes)
        self.session.commit()
        self._changes.committed()

    def rollback(self) -> None:
        """Undo what this transaction wrote: nothing of it is kept, here or in the cache, and
        the audit chain's head is read (and locked) again by the next event."""
        try:
            self.session.rollback()
        finally:
            self._changes.rolled_back()
            self._audit = SqlAudit(self.session, deferred=True)
            self.audit = self._audit


def sends_its_transactions(connection: Connection) -> Connection:
    """`connection` set up for units of work that send their own BEGIN and COMMIT (`sent`):
    on PostgreSQL in autocommit; on SQLite, whose driver is in autocommit already
    (storage/db.py), without the BEGIN that SQLAlchemy's transactions otherwise send."""
    if is_sqlite(connection):
        return connection.execution_options(sqlite_begin=None)
    return connection.execution_options(isolation_level="AUTOCOMMIT")


def _begin(session: Session) -> str:
    """BEGIN as the engine's other transactions begin: on SQLite immediately (storage/db.py);
    on PostgreSQL at the level psycopg begins them at, the server's default, as SQLAlchemy
    found it when it first connected."""
    bind = session.get_bind()
    if is_sqlite(bind):
        return f"BEGIN {SQLITE_BEGIN}"
    level = bind.dialect.default_isolation_level
    return f"BEGIN ISOLATION LEVEL {level}" if level else "BEGIN"


def read_only(engine: Engine) -> Engine:
    """The engine for reading alone: on SQLite its transactions begin deferred, so they take
    no write lock and wait for no writer (reads see the last commit). On PostgreSQL its
    statements run in autocommit: each sees what was committed when it starts, as in the
    default read-committed transaction, without a BEGIN and a ROLLBACK around them (two
    round trips more for every read)."""
    if is_sqlite(engine):
        return engine.execution_options(sqlite_begin="DEFERRED")
    return _autocommit(engine)


def one_statement(engine: Engine) -> Engine:
    """The engine for work that writes with a single statement (a lease's progress, its
    release): on PostgreSQL in autocommit, the statement its own transaction, without the
    BEGIN and COMMIT round trips around it; on SQLite as it is."""
    return engine if is_sqlite(engine) else _autocommit(engine)


def _autocommit(engine: Engine) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def read_session(engine: Engine) -> Session:
    """A session for reading only, which sees the database as it was at its first query.

    So the audit head and the trail read after it agree while other transactions append: on
    PostgreSQL a repeatable-read snapshot (each statement would see a new one under the default
    read committed); on SQLite a deferred transaction, which does not take the write lock and
    in WAL mode keeps its snapshot.
    """
    if is_sqlite(engine):
        return Session(engine.execution_options(sqlite_begin="DEFERRED"))
    return Session(
        engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    )
