"""What a unit of work costs PostgreSQL before its first statement, and what the publisher's
reads of a change cost it: the pool hands out a connection without pinging it, unless the
server has closed it; reads run without a transaction around them; a delivery reads the
change's news with the catalog's count and the change's version in one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, text
from sqlmodel import Session

import storage.repositories
from bot.catalog import LiveCatalog
from bot.publisher import Publisher
from storage import driver, outbox
from storage.db import make_engine
from storage.repositories import VersionCache, read_trail
from storage.uow import SqlUnitOfWork, read_only
from tests.integration.changes import POLICY, request, review_test_and_approve
from tests.integration.wire import CountingProxy
from tests.unit.fakes import FakeClock
from workflows.errors import NotFound
from workflows.model import Change


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


def _as_if_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changes read from here on as by a replica that has read none of them (the one that
    saved them has them cached, at the versions it wrote)."""
    monkeypatch.setattr(storage.repositories, "CACHE", VersionCache())


async def test_a_delivery_reads_the_news_and_the_change_in_two_round_trips(
    proxied: Engine, proxy: CountingProxy, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog's count, the change's events not yet shown and its version together, and
    the change itself, read whole by a replica that has never read it; then the changes
    booked in its window, for conflicts. One statement at a time, each in a transaction of
    its own after a ping, it was nine."""
    change = request(proxied, clock)
    publication = _claimed(proxied, clock)
    publisher = Publisher(proxied, None, POLICY, clock)  # type: ignore[arg-type]
    publisher.live = LiveCatalog(POLICY)
    _as_if_never_read(monkeypatch)

    proxy.reset()
    loaded, events, conflicts, _ = await publisher.reading(publisher._load, publication)

    assert proxy.round_trips == 2
    assert loaded.version == change.version
    assert [e.entry.action for e in events] == _actions(proxied, change.ref)
    assert conflicts == ()


async def test_a_change_this_replica_saved_is_not_read_whole_again(
    proxied: Engine, proxy: CountingProxy, clock: FakeClock
) -> None:
    """The gate's first answer is saved by a round and delivered by the publisher at once:
    the change it saved is cached as committed, and the delivery reads only its news."""
    change = request(proxied, clock)
    publication = _claimed(proxied, clock)
    publisher = Publisher(proxied, None, POLICY, clock)  # type: ignore[arg-type]

    assert storage.repositories.CACHE.shared(str(proxied.url), change.number, change.version)
    proxy.reset()
    loaded, _, _, _ = await publisher.reading(publisher._load, publication)

    assert proxy.round_trips == 2  # the news and the version; the changes booked with it
    assert loaded == change


async def test_a_sweeps_deliveries_read_together_however_many_they_are(
    proxied: Engine, proxy: CountingProxy, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three deliveries read in the round trips of one, and one more: the catalog's count,
    every change's news and version and the changes themselves (never read here before);
    the changes booked in their window (the same: one read); where the cards of those they
    conflict with are. A round trip or more each, the three made twelve."""
    changes = [request(proxied, clock, f"Change {n}") for n in range(3)]
    publications = _claimed_all(proxied, clock)
    publisher = Publisher(proxied, None, POLICY, clock)  # type: ignore[arg-type]
    publisher.live = LiveCatalog(POLICY)
    _as_if_never_read(monkeypatch)

    proxy.reset()
    loaded = await publisher.reading(publisher._load_all, publications)

    assert proxy.round_trips == 3
    for change in changes:
        found = loaded[change.number]
        assert not isinstance(found, Exception), found
        read, events, conflicts, _ = found
        assert read == change
        assert [e.entry.action for e in events] == _actions(proxied, change.ref)
        others = {c.number for c in changes} - {change.number}
        assert {c.other.number for c in conflicts} == others


async def test_a_delivery_whose_change_cannot_be_found_fails_alone(
    engine: Engine, clock: FakeClock
) -> None:
    kept = request(engine, clock, "Kept")
    (publication,) = _claimed_all(engine, clock)
    unknown = replace(publication, number=kept.number + 100)
    publisher = Publisher(engine, None, POLICY, clock)  # type: ignore[arg-type]

    loaded = await publisher.reading(publisher._load_all, [publication, unknown])

    assert isinstance(loaded[unknown.number], NotFound)
    found = loaded[kept.number]
    assert not isinstance(found, Exception) and found[0] == kept


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


@pytest.mark.parametrize("together_", [False, True])
async def test_a_long_trail_is_read_to_its_end_before_the_change(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, together_: bool
) -> None:
    """Events beyond the first batch are read after it, in order, and before the change
    itself, so that the change is no older than the events its replies explain (on
    PostgreSQL each of these reads sees what is committed when it starts)."""
    change = request(engine, clock)
    review_test_and_approve(engine, clock, change.number)
    monkeypatch.setattr(storage.repositories, "TRAIL_BATCH", 2)
    monkeypatch.setattr(storage.repositories, "CACHE", VersionCache())  # read whole, then
    publication = _claimed(engine, clock)
    publisher = Publisher(engine, None, POLICY, clock)  # type: ignore[arg-type]
    reads: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_a: object) -> None:
        reads.append(statement)

    def flight(session: Session, statements: Sequence[driver.Statement]) -> None:
        reads.extend(s.sql for s in statements)  # sent to the driver, past SQLAlchemy's events
        together(session, statements)

    together = driver.together
    monkeypatch.setattr(driver, "together", flight)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        if together_:
            loaded = (await publisher.reading(publisher._load_all, [publication]))[change.number]
            assert not isinstance(loaded, Exception), loaded
            read, events = loaded[0], loaded[1]
        else:
            read, events, _, _ = await publisher.reading(publisher._load, publication)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
        monkeypatch.setattr(driver, "together", together)

    assert len(events) > 2
    assert [e.entry.action for e in events] == _actions(engine, change.ref)
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert read == _stored(engine, change.number)
    trail = [i for i, sql in enumerate(reads) if "FROM audit_events" in sql]
    change_reads = ("SELECT number, version FROM changes", "SELECT number, version, stage")
    versions = [i for i, sql in enumerate(reads) if sql.startswith(change_reads)]  # or whole
    assert len(trail) > 1 and versions, reads
    assert max(trail) < max(versions), reads  # the change no older than the last events


def _claimed_all(engine: Engine, clock: FakeClock) -> list[outbox.Publication]:
    with Session(engine) as session:
        return list(outbox.claim_due(session, "replica", clock.now(), timedelta(seconds=60), 10))


def _claimed(engine: Engine, clock: FakeClock) -> outbox.Publication:
    with Session(engine) as session:
        (publication,) = outbox.claim_due(
            session, "replica", clock.now(), timedelta(seconds=60), 10
        )
    return publication


def _stored(engine: Engine, number: int) -> Change:
    with SqlUnitOfWork(engine) as uow:
        return uow.changes.get(number)


def _actions(engine: Engine, ref: str) -> list[str]:
    with Session(engine) as session:
        return [e.entry.action for e in read_trail(session, ref=ref)]
