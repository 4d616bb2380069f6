"""Two replicas on one PostgreSQL database, requests alternating between them: concurrent
approvals are all counted, double-delivered clicks count once, and the trail verifies."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlmodel import col, select

from bot import ids
from standin import SlackDriver, SlackStandIn, payloads
from storage.db import make_engine
from storage.outbox import PublicationRow
from storage.repositories import SqlChanges
from storage.uow import SqlUnitOfWork, read_session
from tests.conftest import PostgresServer
from tests.e2e.harness import (
    CHANGEBOT,
    SIGNING_SECRET,
    BotProcess,
    eventually,
    everything_shown,
    policy_toml,
)
from tests.e2e.steps import CHANGES
from workflows import process
from workflows.model import Actor, ChangeDetails, Classification, Level, Rollback, Stage, Window
from workflows.policy import parse_policy
from workflows.ports import SystemClock
from workflows.stages import Action

APPROVERS = [f"U0AP{n:02d}" for n in range(50)]
POLICY = policy_toml()


def seed(url: str, count: int) -> list[int]:
    """`count` high-risk Normal changes waiting for their two approvals."""
    engine = make_engine(url)
    policy, clock = parse_policy(POLICY, "test"), SystemClock()
    start = datetime.now(UTC) + timedelta(days=1)
    details = ChangeDetails(
        title="Rotate the TLS certificates",
        classification=Classification.NORMAL,
        scope="code",
        description="Renew and roll out.",
        services=("edge",),
        risk=Level.HIGH,
        rollback=Rollback(plan="Restore the previous bundle."),
        window=Window(start, start + timedelta(hours=1)),
    )
    numbers = []
    for _ in range(count):
        uow = SqlUnitOfWork(engine)
        change = process.request_change(uow, clock, policy, Actor("U0ALICE"), details).change
        process.record_review(
            uow, clock, policy, change.number, Actor("U0BOB"), assessment="ok", risk=Level.HIGH
        )
        process.add_test_evidence(
            uow, clock, policy, change.number, Actor("U0ALICE"), evidence="green"
        )
        numbers.append(change.number)
    engine.dispose()
    return numbers


def approve_body(slack: SlackStandIn, user: str, card: dict[str, Any]) -> bytes:
    """The exact bytes Slack sends when `user` clicks Approve on this card."""
    action_id = ids.card_action_id(Action.APPROVE)
    for block in card["blocks"]:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                action = {
                    "type": "button",
                    "block_id": block.get("block_id", ""),
                    "action_id": action_id,
                    "text": element["text"],
                    "value": element["value"],
                    "action_ts": "1700000000.000001",
                }
                payload = payloads.block_actions_in_message(
                    slack.workspace,
                    token="standin-verification-token",
                    user=user,
                    trigger_id=slack.issue_trigger(user),
                    action=action,
                    channel=CHANGES,
                    message={k: v for k, v in card.items() if k != "channel"},
                    ephemeral=False,
                    response_url=slack.issue_response_url(CHANGES, user, card["ts"], False),
                    state={},
                )
                return f"payload={quote(json.dumps(payload))}".encode()
    raise AssertionError(f"no Approve button on {card['ts']}")


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.migrated_database()
    try:
        yield postgres_server.url_of(name)
    finally:
        postgres_server.discard(name)


def card_for(slack: SlackStandIn, number: int) -> dict[str, Any] | None:
    ref = f"CHG-{number:04d} ·"  # its own header: another card may link it
    for message in slack.messages(CHANGES):
        if ref in str((message.get("blocks") or [None])[0]):
            return message
    return None


def settled_card(slack: SlackStandIn, card: dict[str, Any]) -> bool:
    """Whether the card shows the change approved (its Start deployment button)."""
    return "start_deployment" in str(slack.message(CHANGES, card["ts"]))


def explain(unsettled: list[int], bots: list[BotProcess], slack: SlackStandIn, what: str) -> str:
    """What to read when some cards never got there: their publications, what Slack holds
    where they say their cards are, and the bots' logs (without the timer's every run)."""
    engine = make_engine(bots[0].env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(PublicationRow).where(col(PublicationRow.number).in_(unsettled))
            ).all()
    finally:
        engine.dispose()
    held = [f"{row.thread_ts}: {str(slack.message(CHANGES, row.thread_ts))[:1500]}" for row in rows]
    logs = "\n".join(f"--- replica {i}:\n{_told(b.output())[-6000:]}" for i, b in enumerate(bots))
    return f"{what}: {unsettled}\npublications: {rows}\nin Slack: {held}\n{logs}"


def _told(output: str) -> str:
    return "\n".join(line for line in output.splitlines() if "apscheduler" not in line)


@pytest.mark.postgres
async def test_two_replicas_count_every_concurrent_approval_and_each_double_click_once(
    slack: SlackStandIn, workdir: Path, database: str
) -> None:
    slack.workspace.set_usergroup("S0APPROVERS", APPROVERS)
    for user in APPROVERS:
        slack.workspace.add_user(user, user.lower())
    # Sized to the race it proves: dozens of clicks landing together on two replicas already
    # collide on the same changes; hundreds only took longer (56 s, now a quarter of that).
    numbers = await asyncio.to_thread(seed, database, 40)
    bots = []
    for index in range(2):
        folder = workdir / f"approvals-{index}"
        folder.mkdir(exist_ok=True)
        env = {"CHANGEBOT_SWEEP_SECONDS": "0.5"}
        bots.append(BotProcess(slack, folder, database_url=database, policy=POLICY, env=env))
    await asyncio.gather(*(bot.start() for bot in bots))
    # What is on trial is counting, not speed (the benchmarks measure that): a loaded machine
    # may take longer than Slack's 3 s to answer 500 clicks arriving at once.
    drivers = [
        SlackDriver(b.url + "/slack/events", SIGNING_SECRET, slack, timeout=30) for b in bots
    ]
    try:
        await eventually(
            lambda: all(card_for(slack, n) for n in numbers),
            timeout=150,
            interval=0.3,
            explain=lambda: explain(
                [n for n in numbers if not card_for(slack, n)], bots, slack, "not posted"
            ),
        )
        cards = {n: card_for(slack, n) for n in numbers}

        # Two approvers on each of 20 changes, clicking at the same moment on two replicas.
        clicks = []
        for i, number in enumerate(numbers[:20]):
            first, second = APPROVERS[(2 * i) % 50], APPROVERS[(2 * i + 1) % 50]
            clicks.append(drivers[0].post_raw(approve_body(slack, first, cards[number])))
            clicks.append(drivers[1].post_raw(approve_body(slack, second, cards[number])))
        # 40 clicks on 20 more changes, each delivered twice, once to each replica.
        for i, number in enumerate(numbers[20:]):
            for k in range(2):
                body = approve_body(slack, APPROVERS[(2 * i + k) % 50], cards[number])
                clicks.append(drivers[0].post_raw(body))
                clicks.append(drivers[1].post_raw(body))
        replies = await asyncio.gather(*clicks)
        assert all(reply.status == 200 for reply in replies)

        def settled() -> bool:
            return all(settled_card(slack, c) for c in cards.values())

        await eventually(
            settled,
            timeout=150,
            interval=0.5,
            explain=lambda: explain(
                [n for n, c in cards.items() if not settled_card(slack, c)],
                bots,
                slack,
                "not shown approved",
            ),
        )
        # The cards are drawn before their thread replies: wait for those too, before the
        # stop cancels the publishers.
        await eventually(lambda: everything_shown(bots[0]), timeout=60, interval=0.2)
    finally:
        for bot in bots:
            bot.stop()

    engine = make_engine(database)
    with read_session(engine) as session:
        for number in numbers:
            change = SqlChanges(session).get(number)
            assert change.stage is Stage.DEPLOY, change.ref
            assert len(change.approvers()) == 2 == len(set(change.approvers())), change.ref
    engine.dispose()

    env = {**os.environ, **bots[0].env}
    export = subprocess.run(
        [CHANGEBOT, "audit", "export", "--format", "jsonl"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    events = [json.loads(line) for line in export.splitlines()]
    approved = Counter(e["ref"] for e in events if e["action"] == "approved")
    authorised = Counter(e["ref"] for e in events if e["action"] == "authorised")
    assert set(approved.values()) == {2} and len(approved) == len(numbers)
    assert set(authorised.values()) == {1} and len(authorised) == len(numbers)
    verified = subprocess.run(
        [CHANGEBOT, "audit", "verify"], env=env, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stderr

    for number, card in cards.items():
        thread = [m.get("text", "") for m in slack.thread(CHANGES, card["ts"])[1:]]
        assert sum("approved (" in t for t in thread) == 2, f"CHG-{number:04d}: {thread}"
        assert sum(t.startswith("🟢 Authorised") for t in thread) == 1
        assert "2 of 2" in str(slack.message(CHANGES, card["ts"])["blocks"])
