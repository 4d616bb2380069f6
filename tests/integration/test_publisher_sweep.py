"""A sweep of the publisher hands its database work to a worker thread in three turns, however
many changes it delivers: the claim, the deliveries' reads together, their releases together.
Each turn hands the interpreter between the event loop and the thread; one read and one
release for each delivery cost the delivery of a gate's first answer as much CPU again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from bot.publisher import Publisher
from standin import SlackStandIn
from storage.uow import SqlUnitOfWork
from tests.e2e.harness import policy_toml, workspace
from tests.unit.builders import normal_details
from tests.unit.fakes import FakeClock
from workflows import process
from workflows.model import Actor, Level, format_ref
from workflows.policy import parse_policy

POLICY = parse_policy(policy_toml())
ALICE, BOB = Actor("U0ALICE"), Actor("U0BOB")


async def test_a_sweep_hands_its_database_work_to_a_thread_three_times(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = [
        process.request_change(
            SqlUnitOfWork(engine), clock, POLICY, ALICE, normal_details(title=f"Change {n}")
        ).change.number
        for n in range(3)
    ]
    async with SlackStandIn(workspace()) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)
        publisher = Publisher(engine, client, POLICY, clock)
        assert await publisher.sweep() == 3  # the cards, posted
        for number in numbers:  # news for each: a reply in its thread
            process.record_review(
                SqlUnitOfWork(engine),
                clock,
                POLICY,
                number,
                BOB,
                assessment="Fine.",
                risk=Level.LOW,
            )
        turns: list[str] = []
        to_thread = asyncio.to_thread

        async def counted(work: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            turns.append(getattr(work, "__qualname__", repr(work)))
            return await to_thread(work, *args, **kwargs)

        monkeypatch.setattr(asyncio, "to_thread", counted)
        assert await publisher.sweep() == 3
        monkeypatch.undo()

        assert len(turns) == 3, turns
        for number in numbers:
            card = next(m for m in slack.messages("C0CHANGES") if format_ref(number) in str(m))
            replies = slack.thread("C0CHANGES", card["ts"])[1:]
            assert any("review" in r["text"].lower() for r in replies), replies
