"""What a unit of work costs PostgreSQL before its first statement, and what the publisher's
reads of a change cost it: the pool hands out a connection without pinging it, unless the
server has closed it; reads run without a transaction around them; a delivery reads the
change's news with the catalog's count and the change's version in one round trip."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

import storage.repositories
from bot.catalog import LiveCatalog
from bot.publisher import Publisher
from storage import outbox
from storage.db import make_engine
from storage.repositories import VersionCache, read_trail
from storage.uow import read_only
from tests.integration.changes import POLICY, request, review_test_and_approve
from tests.integration.wire import CountingProxy
from tests.unit.fakes import FakeClock


def _pid(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_pooled_connection_is_handed_out_without_a_ping(
    proxied: Engine, proxy: CountingProxy
) -> None:
    """A read is one round trip: no ping before it (SQLAlchemy's `pool_pre_ping` sent one
    every time), and no BEGIN and ROLLBACK around it."""
    _pid(proxied)  # the pool holds a connection now

    proxy.reset()
    with Session(read_only(proxied)) as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1

    assert proxy.round_trips == 1


def test_a_connection_the_server_closed_is_replaced_before_anyone_uses_it(
    engine: Engine, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("a database server that closes connections")
    pid = _pid(engine)  # back in the pool, idle
    elsewhere = make_engine(engine.url.render_as_string(hide_password=False))
    with elsewhere.connect() as other:  # waits up to 10 s for the connection to end
        ended = other.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
        assert ended.scalar_one()
    elsewhere.dispose()

    assert _pid(engine) != pid  # no error: a new connection, the old one never handed out


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changes read as if by a replica that has read none before."""
    monkeypatch.setattr(storage.repositories, "CACHE", VersionCache())


async def test_a_delivery_reads_the_news_and_the_change_in_two_round_trips(
    proxied: Engine, proxy: CountingProxy, clock: FakeClock, fresh_cache: None
) -> None:
    """The catalog's count, the change's events not yet shown and its version together; then
    the change itself, read whole by a replica that has not read it at that version; then the
    changes booked in its window, for conflicts. One statement at a time, each in a
    transaction of its own after a ping, it was nine."""
    change = request(proxied, clock)
    publication = _claimed(proxied, clock)
    publisher = Publisher(proxied, None, POLICY, clock)  # type: ignore[arg-type]
    publisher.live = LiveCatalog(POLICY)

    proxy.reset()
    loaded, events, conflicts, _ = await publisher.reading(publisher._load, publication)

    assert proxy.round_trips == 3
    assert loaded.version == change.version
    assert [e.entry.action for e in events] == _actions(proxied, change.ref)
    assert conflicts == ()


async def test_a_delivery_is_written_down_in_one_round_trip(
    proxied: Engine, proxy: CountingProxy, clock: FakeClock
) -> None:
    """Its progress, the lease handed back and the check that nothing more is due: one
    statement, in autocommit. In a transaction of two statements it was four round trips."""
    number = request(proxied, clock).number
    publication = _claimed(proxied, clock)
    publisher = Publisher(proxied, None, POLICY, clock, owner="replica")  # type: ignore[arg-type]

    proxy.reset()
    await publisher._release(
        number, due_at=None, claimed_due_at=publication.due_at, progress={"published_seq": 10**6}
    )

    assert proxy.round_trips == 1
    with Session(proxied) as session:
        assert outbox.claim_due(session, "replica", clock.now(), timedelta(seconds=60), 10) == []


async def test_a_long_trail_is_read_to_its_end(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events beyond the first batch are read after it, in order."""
    change = request(engine, clock)
    review_test_and_approve(engine, clock, change.number)
    monkeypatch.setattr(storage.repositories, "TRAIL_BATCH", 2)
    publication = _claimed(engine, clock)
    publisher = Publisher(engine, None, POLICY, clock)  # type: ignore[arg-type]

    _, events, _, _ = await publisher.reading(publisher._load, publication)

    assert len(events) > 2
    assert [e.entry.action for e in events] == _actions(engine, change.ref)
    assert [e.seq for e in events] == sorted(e.seq for e in events)


def _claimed(engine: Engine, clock: FakeClock) -> outbox.Publication:
    with Session(engine) as session:
        (publication,) = outbox.claim_due(
            session, "replica", clock.now(), timedelta(seconds=60), 10
        )
    return publication


def _actions(engine: Engine, ref: str) -> list[str]:
    with Session(engine) as session:
        return [e.entry.action for e in read_trail(session, ref=ref)]
