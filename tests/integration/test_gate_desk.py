"""The gate's desk (bot/api/desk.py) and its database: the round trips a round of questions
costs PostgreSQL, the connection it keeps, and what happens when that connection is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from bot.api.desk import GateDesk
from storage.db import make_engine
from tests.integration.api import Served, served
from tests.integration.wire import CountingProxy
from workflows.gate import Answer, Asked, GateStatus, Question, Target
from workflows.tokens import hash_secret

PAYMENTS = {"service": "payments", "environment": "production"}


@pytest.fixture
def proxy(database_url: str, backend: str) -> Iterator[CountingProxy]:
    if backend == "sqlite":
        pytest.skip("round trips to a database server")
    with CountingProxy(database_url) as proxy:
        yield proxy


@pytest.fixture
def proxied(proxy: CountingProxy) -> Iterator[Engine]:
    engine = make_engine(proxy.url)
    try:
        yield engine
    finally:
        engine.dispose()


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


async def test_a_round_of_questions_costs_postgresql_two_round_trips(
    proxied: Engine, proxy: CountingProxy
) -> None:
    """BEGIN, the changes' versions, the chain's head and the tokens, together; the events,
    the new head and COMMIT, together. One at a time, with the pool's ping, it was eight."""
    async with served(proxied) as api:
        credential, asked = questions(api, 10)
        desk = api.bot.api.desk
        # The first answer is news (the change is saved); the next reads it whole once more.
        for _ in range(2):
            await ask_together(desk, credential, asked)
        events = api.events()

        proxy.round_trips = 0
        await ask_together(desk, credential, asked)

        assert proxy.round_trips == 2
        assert api.events() == events + 10


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
