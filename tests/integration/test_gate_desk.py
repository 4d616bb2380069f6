"""The gate's desk (bot/api/desk.py) and its database: the round trips a round of questions
costs PostgreSQL, the connection it keeps, and what happens when that connection is lost."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

import storage.repositories
from bot.api.desk import GateDesk, Refused
from storage import driver, tokens
from storage.repositories import SqlAudit, VersionCache
from tests.integration.api import Served, served
from tests.integration.locks import waiting_for_a_lock
from tests.integration.wire import CountingProxy
from workflows.gate import Answer, Asked, GateStatus, Question, Target
from workflows.tokens import Scope, hash_secret

PAYMENTS = {"service": "payments", "environment": "production"}
AT = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)


def questions(api: Served, count: int) -> tuple[str, list[Question]]:
    """An approved change in its window, a token, and `count` pipelines' questions about it."""
    change = api.approved()
    api.in_window()
    credential = hash_secret(api.token())
    target = Target("payments", "production")
    asked = [
        Question(change.number, target, Asked("", run=f"https://ci/{i}")) for i in range(count)
    ]
    return credential, asked


async def ask_together(desk: GateDesk, credential: str, asked: list[Question]) -> list[Answer]:
    answers = await asyncio.gather(*(desk.ask(credential, q) for q in asked))
    assert all(isinstance(a, Answer) and a.decision.status is GateStatus.ALLOWED for a in answers)
    return [a for a in answers if isinstance(a, Answer)]


async def asked_before(api: Served, count: int) -> tuple[GateDesk, str, list[Question]]:
    """`count` pipelines' questions, asked twice already, as a waiting pipeline asks them
    again: the first answer is news (the change is saved); the next reads it whole once
    more; from then on a round reads only versions."""
    credential, asked = questions(api, count)
    desk = api.bot.api.desk
    for _ in range(2):
        await ask_together(desk, credential, asked)
    return desk, credential, asked


async def test_a_round_of_questions_costs_postgresql_two_round_trips(
    proxied: Engine, proxy: CountingProxy
) -> None:
    """BEGIN, the changes' versions, the chain's head and the tokens, together; the events,
    the new head and COMMIT, together. One at a time, with the pool's ping, it was eight."""
    async with served(proxied) as api:
        desk, credential, asked = await asked_before(api, 10)
        events = api.events()

        proxy.reset()
        await ask_together(desk, credential, asked)

        assert proxy.round_trips == 2
        assert api.events() == events + 10


async def test_a_round_with_news_costs_one_round_trip_more(
    proxied: Engine, proxy: CountingProxy
) -> None:
    """A pipeline asking about a change for the first time: the change is saved (a
    compare-and-set, whose answer says whether it moved on from the version read), and its
    card marked due with the events, the new head and COMMIT. Through SQLAlchemy, with the
    mark apart, it was two round trips more."""
    async with served(proxied) as api:
        asked_before, first_time = api.approved(), api.approved()
        api.in_window()
        credential = hash_secret(api.token())
        target = Target("payments", "production")
        desk = api.bot.api.desk
        await ask_together(desk, credential, [Question(asked_before.number, target, Asked(""))])
        asked = [
            Question(first_time.number, target, Asked("", run=f"https://ci/{i}")) for i in range(10)
        ]

        proxy.reset()
        answers = await ask_together(desk, credential, asked)

        assert proxy.round_trips == 3
        assert [a.news for a in answers] == [True] + [False] * 9
        with Session(proxied) as session:
            due = session.execute(
                text("SELECT count(*) FROM publications WHERE number = :n AND due_at IS NOT NULL"),
                {"n": first_time.number},
            )
            assert due.scalar_one() == 1


async def test_a_change_this_replica_never_read_costs_no_round_trip_more(
    proxied: Engine, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked about a change it has never cached (another replica answered its questions so
    far), the desk reads it whole with the versions, not in a round trip after them."""
    async with served(proxied) as api:
        desk, credential, asked = await asked_before(api, 10)
        monkeypatch.setattr(storage.repositories, "CACHE", VersionCache())

        proxy.reset()
        await ask_together(desk, credential, asked)

        assert proxy.round_trips == 2


async def test_a_round_sends_its_own_begin_and_commit_with_its_statements(
    engine: Engine, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through SQLAlchemy, a transaction's BEGIN and COMMIT cost the interpreter more than
    SQLite takes to run them, and PostgreSQL a round trip each: a round sends both itself,
    with its reads and its writes (SQLite's BEGIN IMMEDIATE, taking the write lock before
    it reads, as the engine's other transactions do)."""
    async with served(engine) as api:
        desk, credential, asked = await asked_before(api, 3)
        sent: list[str] = []
        by_sqlalchemy: list[str] = []
        together = driver.together

        def observed(session: Session, statements: Sequence[driver.Statement]) -> None:
            sent.extend(statement.sql for statement in statements)
            together(session, statements)

        def executed(_conn: object, _cursor: object, sql: str, *_: object) -> None:
            by_sqlalchemy.append(sql)

        monkeypatch.setattr(driver, "together", observed)
        event.listen(desk.engine, "before_cursor_execute", executed)
        try:
            await ask_together(desk, credential, asked)
        finally:
            event.remove(desk.engine, "before_cursor_execute", executed)

        begin = "BEGIN IMMEDIATE" if backend == "sqlite" else "BEGIN ISOLATION LEVEL"
        assert sent[0].startswith(begin) and sent[-1] == "COMMIT"
        # (SQLAlchemy commits through the driver's commit(), which no event shows.)
        assert not [sql for sql in by_sqlalchemy if sql.split()[0] == "BEGIN"]


def desks_sqlite(desk: GateDesk) -> sqlite3.Connection:
    """The desk's own connection to SQLite, as the driver holds it."""
    assert desk._connection is not None, "the desk has not answered yet"
    raw = desk._connection.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def write_lock_is_free(engine: Engine) -> bool:
    other = sqlite3.connect(str(engine.url.database), timeout=0.2, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def test_a_round_whose_begin_waits_too_long_fails_and_the_next_goes_on(
    engine: Engine, backend: str
) -> None:
    """Another writer holding SQLite's write lock past the busy timeout fails the round's
    own BEGIN IMMEDIATE (the gate answers 503): nothing is left open on the desk's
    connection, and the next round, the lock free again, is answered and recorded."""
    if backend != "sqlite":
        pytest.skip("SQLite's write lock")
    async with served(engine) as api:
        desk, credential, asked = await asked_before(api, 3)
        desks_sqlite(desk).execute("PRAGMA busy_timeout = 200")
        events = api.events()
        other = sqlite3.connect(str(engine.url.database), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(DBAPIError, match="locked"):
                await desk.ask(credential, asked[0])
        finally:
            other.execute("ROLLBACK")
            other.close()

        assert not desks_sqlite(desk).in_transaction
        await ask_together(desk, credential, asked)
        assert api.events() == events + 3


async def test_a_round_whose_commit_fails_is_rolled_back_and_frees_the_write_lock(
    engine: Engine, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The round's own COMMIT refused (here a deferred foreign key, checked at COMMIT, broken
    by a statement slipped in with the round's writes): nothing of the round is kept, the
    desk's connection is out of its transaction, SQLite's write lock is free for others,
    and the next round is answered and recorded."""
    if backend != "sqlite":
        pytest.skip("a COMMIT that SQLite refuses")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql(
            "CREATE TABLE children (parent INTEGER REFERENCES parents (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
    async with served(engine) as api:
        desk, credential, asked = await asked_before(api, 3)
        events = api.events()
        writing = SqlAudit.writing

        def broken(audit: SqlAudit) -> list[driver.Statement]:
            return [*writing(audit), driver.Statement("INSERT INTO children VALUES (42)")]

        monkeypatch.setattr(SqlAudit, "writing", broken)
        with pytest.raises(DBAPIError, match="FOREIGN KEY") as refused:
            await desk.ask(credential, asked[0])
        monkeypatch.setattr(SqlAudit, "writing", writing)

        assert refused.value.statement == "COMMIT"
        assert not desks_sqlite(desk).in_transaction
        assert write_lock_is_free(engine)
        assert api.events() == events
        await ask_together(desk, credential, asked)
        assert api.events() == events + 3


async def test_a_dropped_connection_is_replaced_and_the_question_answered_once(
    engine: Engine, backend: str
) -> None:
    """The desk keeps its connection between rounds, unpinged: one the server dropped fails
    the round's first statement, and the round is answered again on a new connection."""
    if backend == "sqlite":
        pytest.skip("a database server that drops connections")
    async with served(engine) as api:
        credential, asked = questions(api, 3)
        desk = api.bot.api.desk
        await ask_together(desk, credential, asked)
        events = api.events()

        with engine.connect() as connection:  # every other connection to this database
            dropped = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        assert dropped >= 1

        await ask_together(desk, credential, asked)

        assert api.events() == events + 3


async def test_a_connection_lost_before_the_writes_is_replaced_and_the_round_answered(
    proxied: Engine, proxy: CountingProxy
) -> None:
    async with served(proxied) as api:
        desk, credential, asked = await asked_before(api, 3)
        events = api.events()

        proxy.reset(cut_at=1)  # the round's reads, with its BEGIN
        await ask_together(desk, credential, asked)

        assert api.events() == events + 3


async def test_a_connection_lost_with_the_writes_fails_the_round_rather_than_record_it_twice(
    proxied: Engine, proxy: CountingProxy
) -> None:
    """Lost once its COMMIT is sent, a round may have been committed: answered again, it
    would be recorded twice. Its questions fail (503: the gate fails closed); the next round
    is answered on a new connection."""
    async with served(proxied) as api:
        desk, credential, asked = await asked_before(api, 3)
        events = api.events()

        proxy.reset(cut_at=2)  # the round's writes, with its COMMIT
        failed = await asyncio.gather(
            *(desk.ask(credential, q) for q in asked), return_exceptions=True
        )

        assert all(isinstance(f, DBAPIError) and f.connection_invalidated for f in failed)
        assert api.events() == events  # never reached the server
        await ask_together(desk, credential, asked)
        assert api.events() == events + 3


async def test_once_the_server_stops_its_desk_refuses_questions_as_unavailable(
    engine: Engine,
) -> None:
    async with served(engine) as api:
        change = api.approved()
        api.in_window()
        secret = api.token()
        status, _ = await api.ask(secret, change=change.ref, **PAYMENTS)
        assert status == 200
        events = api.events()

        await api.bot.api.desk.close()
        status, body = await api.ask(secret, change=change.ref, **PAYMENTS)

        assert (status, body["error"]) == (503, "unavailable")
        assert api.events() == events


async def test_questions_with_no_good_token_never_wait_for_the_audit_chain(
    engine: Engine, backend: str
) -> None:
    """The chain's head is taken early in a round only when one of its tokens was good last
    time: a flood of bad tokens is refused at once, whoever holds the chain."""
    if backend == "sqlite":
        pytest.skip("row locks held by another connection")
    async with served(engine) as api:
        change = api.approved()
        api.in_window()
        target = Target("payments", "production")
        question = Question(change.number, target, Asked("", run="https://ci/1"))
        with engine.connect() as holder:
            holder.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
            try:
                refused = await asyncio.wait_for(
                    api.bot.api.desk.ask(hash_secret("cbt_not-a-token"), question), timeout=10
                )
            finally:
                holder.rollback()
        assert isinstance(refused, Refused) and refused.status == 401


def test_a_token_revoked_while_a_round_holds_the_chain_waits_for_it_and_does_not_deadlock(
    engine: Engine, backend: str
) -> None:
    """A round locks the chain's head, then notes its token's use; a revocation takes the
    head first too, so it waits for the round instead of holding the token's row while the
    round waits for it (PostgreSQL would end one of them)."""
    if backend == "sqlite":
        pytest.skip("row locks held by another connection")
    with Session(engine) as session:
        tokens.create(session, "ci-prod", frozenset({Scope.GATE}), "UOPS", AT)
    revoked: list[object] = []

    def revoke() -> None:
        with Session(engine) as session:
            revoked.append(tokens.revoke(session, "ci-prod", "UOPS", AT))

    with engine.connect() as round_:
        round_.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        revoking = threading.Thread(target=revoke)
        revoking.start()
        waiting_for_a_lock(engine)
        round_.execute(
            text("UPDATE api_tokens SET last_used_at = :at WHERE name = 'ci-prod'"), {"at": AT}
        )
        round_.commit()
    revoking.join(timeout=30)
    assert len(revoked) == 1
