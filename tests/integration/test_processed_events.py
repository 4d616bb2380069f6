"""Slack's retries of an event are recognised by its event_id, on every engine and replica."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from storage.events import first_delivery, forget_before

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def deliver(engine: Engine, event_id: str, at: datetime = NOW) -> bool:
    with Session(engine) as session:
        return first_delivery(session, event_id, at)


def test_the_first_delivery_of_an_event_is_the_first(engine: Engine) -> None:
    assert deliver(engine, "Ev01") is True


def test_a_retry_of_a_handled_event_is_not_a_first_delivery(engine: Engine) -> None:
    deliver(engine, "Ev01")
    assert deliver(engine, "Ev01", NOW + timedelta(seconds=3)) is False


def test_other_events_are_each_delivered_for_the_first_time(engine: Engine) -> None:
    assert [deliver(engine, f"Ev{n}") for n in range(3)] == [True, True, True]


def test_of_many_simultaneous_deliveries_exactly_one_is_the_first(engine: Engine) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: deliver(engine, "Ev01"), range(8)))
    assert results.count(True) == 1


def test_events_older_than_a_day_are_forgotten(engine: Engine) -> None:
    deliver(engine, "Ev01", NOW - timedelta(days=2))
    deliver(engine, "Ev02", NOW)
    with Session(engine) as session:
        assert forget_before(session, NOW - timedelta(days=1)) == 1
    assert deliver(engine, "Ev01") is True
    assert deliver(engine, "Ev02") is False
