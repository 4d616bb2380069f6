"""Reminders with several replicas on one PostgreSQL database: each sent exactly once, none
lost when a replica dies mid-sweep, and none repeated for intervals missed while stopped."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from standin import SlackStandIn
from storage.db import make_engine
from storage.uow import SqlUnitOfWork
from tests.conftest import PostgresServer
from tests.e2e.harness import BotProcess, eventually, policy_toml
from tests.unit.fakes import FakeClock
from workflows import emergency, process
from workflows.model import Actor, Outcome
from workflows.policy import parse_policy
from workflows.ports import SystemClock

CHASE = (
    policy_toml()
    .replace('review_deadline = "20s"', 'review_deadline = "6s"')
    .replace('reminder_every = "5s"', 'reminder_every = "3s"')
    .replace('escalation_every = "5s"', 'escalation_every = "3s"')
)
REPLICA_ENV = {"CHANGEBOT_SWEEP_SECONDS": "0.5", "CHANGEBOT_LEASE_SECONDS": "12"}
REMINDERS = ("reminder_sent", "reminder_escalated")


def seed(url: str, count: int, *, ago: float = 0.0) -> None:
    """`count` emergency changes whose post-change reviews are owed from now (or from `ago`
    seconds back: as if the bot had been stopped that long)."""
    engine = make_engine(url)
    policy = parse_policy(CHASE, "test")
    clock = FakeClock(datetime.now(UTC) - timedelta(seconds=ago)) if ago else SystemClock()
    alice, carol = Actor("U0ALICE"), Actor("U0CAROL")
    for index in range(count):
        uow = SqlUnitOfWork(engine)
        change = emergency.declare_emergency(uow, clock, policy, alice, f"Hotfix {index}")
        process.approve(uow, clock, policy, change.number, carol)
        process.start_deployment(uow, clock, policy, change.number, alice)
        process.record_outcome(uow, clock, policy, change.number, alice, outcome=Outcome.SUCCESSFUL)
    engine.dispose()


def uncertain(url: str) -> Counter[str]:
    """Reminders recorded after a send whose outcome nobody could know (a timeout)."""
    engine = make_engine(url)
    query = text(
        "SELECT ref, details FROM audit_events WHERE action IN ('reminder_sent', "
        "'reminder_escalated')"
    )
    with engine.connect() as connection:
        found = Counter(
            ref
            for ref, details in connection.execute(query)
            if json.loads(details).get("delivery") == "uncertain"
        )
    engine.dispose()
    return found


def recorded(url: str) -> dict[str, list[int]]:
    """For each change, the numbers of the reminders recorded in the audit trail."""
    engine = make_engine(url)
    found: dict[str, list[int]] = {}
    query = text(
        "SELECT ref, details FROM audit_events WHERE action IN ('reminder_sent', "
        "'reminder_escalated') ORDER BY seq"
    )
    with engine.connect() as connection:
        for ref, details in connection.execute(query):
            found.setdefault(ref, []).append(int(json.loads(details)["reminder"]))
    engine.dispose()
    return found


def sent(slack: SlackStandIn) -> Counter[str]:
    """How many reminders each change's owner received."""
    counts: Counter[str] = Counter()
    for message in slack.dms("U0ALICE"):
        words = message.get("text", "")
        if "Reminder" in words or words.startswith("🚨"):
            match = re.search(r"CHG-\d+", words)
            assert match, words
            counts[match.group(0)] += 1
    return counts


async def rounds_done(url: str, changes: int, at_least: int) -> bool:
    """Read off the event loop: the stand-in lives on it and must keep answering."""
    numbers = await asyncio.to_thread(recorded, url)
    return len(numbers) == changes and min(len(n) for n in numbers.values()) >= at_least


async def progressed(url: str, before: dict[str, int], by: int) -> bool:
    numbers = await asyncio.to_thread(recorded, url)
    return all(len(numbers.get(ref, [])) >= count + by for ref, count in before.items())


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.migrated_database()
    try:
        yield postgres_server.url_of(name)
    finally:
        postgres_server.discard(name)


async def replicas(slack: SlackStandIn, workdir: Path, url: str, count: int) -> list[BotProcess]:
    bots = []
    for index in range(count):
        folder = workdir / f"replica-{index}"
        folder.mkdir(exist_ok=True)
        bots.append(BotProcess(slack, folder, database_url=url, policy=CHASE, env=REPLICA_ENV))
    await asyncio.gather(*(bot.start() for bot in bots))
    return bots


@pytest.mark.postgres
async def test_three_replicas_send_every_reminder_once_and_lose_none_when_one_is_killed(
    slack: SlackStandIn, workdir: Path, database: str
) -> None:
    # Sized to the race it proves: three replicas sweeping 60 changes' reminders every half
    # second already claim against each other; 200 only took longer.
    await asyncio.to_thread(seed, database, 60)
    bots = await replicas(slack, workdir, database, 3)
    try:
        # Every change is reminded, then escalated, round after round.
        await eventually(lambda: rounds_done(database, 60, at_least=2), timeout=40, interval=0.5)
        # Exactly once: no reminder recorded twice, none sent without its record.
        await asyncio.sleep(1.0)
        numbers, counts = await asyncio.to_thread(recorded, database), sent(slack)
        for ref, reminders in numbers.items():
            assert sorted(reminders) == list(range(1, len(reminders) + 1)), ref
            assert counts[ref] in (len(reminders), len(reminders) + 1), ref

        # A replica dies in the middle of a sweep: its leases expire, the others go on.
        before = {ref: len(n) for ref, n in (await asyncio.to_thread(recorded, database)).items()}
        bots[0].stop(signal.SIGKILL)
        await eventually(lambda: progressed(database, before, by=2), timeout=40, interval=0.5)
        # The survivors stop gracefully: each finishes its sweep, so all that was sent is recorded.
        for bot in bots[1:]:
            assert bot.stop() == 0
    finally:
        for bot in bots:
            bot.stop()
    numbers, counts = await asyncio.to_thread(recorded, database), sent(slack)
    unsure = await asyncio.to_thread(uncertain, database)
    duplicates = 0
    for ref, reminders in numbers.items():
        assert sorted(reminders) == list(range(1, len(reminders) + 1)), ref
        # A reminder whose send timed out is recorded as uncertain, never sent again.
        assert counts[ref] >= len(reminders) - unsure[ref], f"{ref}: a reminder was lost"
        assert counts[ref] <= len(reminders) + 1, f"{ref}: sent more than once"
        duplicates += max(0, counts[ref] - len(reminders))
    # Only what the killed replica had sent but not yet recorded can have gone out twice.
    assert duplicates <= 50


async def test_after_a_long_stop_each_owed_reminder_is_sent_once_not_once_per_missed_interval(
    slack: SlackStandIn, workdir: Path
) -> None:
    url = f"sqlite:///{workdir / 'restart.db'}"
    bot = BotProcess(slack, workdir, database_url=url, policy=CHASE, env=REPLICA_ENV)
    await bot.start()  # creates and migrates the database
    bot.stop()
    # Owed from 10 s back: stopped for over three reminder intervals past the first reminder's
    # due time (written as it would have been, not waited for).
    await asyncio.to_thread(seed, url, 5, ago=10)
    refs = {f"CHG-{n:04d}" for n in range(1, 6)}
    before = sent(slack)
    restarted_at = time.monotonic()
    await bot.start()
    try:
        await eventually(lambda: all(len(recorded(url).get(r, [])) >= 1 for r in refs), timeout=10)
        first = recorded(url)  # five changes: quick enough to read on the loop
        # Within the next interval nothing more: one reminder each, not one per missed slot.
        await asyncio.sleep(max(0.0, 1.5 - (time.monotonic() - restarted_at)))
        assert {r: len(n) for r, n in recorded(url).items() if r in refs} == dict.fromkeys(refs, 1)
        new = sent(slack) - before
        assert {r: new[r] for r in refs} == dict.fromkeys(refs, 1)
        assert all(numbers == [1] for r, numbers in first.items() if r in refs)
    finally:
        bot.stop()
