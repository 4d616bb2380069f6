"""The whole bot built in this process: the real app on a real socket, the real database and
the Slack stand-in, but on a fake clock, with the reminders swept when the test says.

What waits for time (reminders, escalations, break-glass opening) is proven here by moving the
clock, in milliseconds, instead of by sleeping through it in a `changebot serve` subprocess;
tests/e2e keeps what needs a real process and real time (replicas, restarts, the timer).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestServer
from sqlmodel import Session

from bot.app import Bot, create_app
from bot.server import web_app
from bot.settings import Settings
from standin import SlackDriver, SlackStandIn, Workspace
from storage.db import make_engine
from storage.repositories import read_trail
from storage.uow import SqlUnitOfWork
from tests.e2e.harness import SIGNING_SECRET, SLOW_MACHINE, policy_toml, workspace
from tests.unit.fakes import FakeClock
from workflows import process
from workflows.audit import ChainedEntry
from workflows.model import Actor, Change, ChangeDetails
from workflows.policy import parse_policy

#: So long that the timer never fires during a test: the test sweeps.
NEVER = 24 * 3600.0


@dataclass
class InProcess:
    bot: Bot
    slack: SlackStandIn
    driver: SlackDriver
    clock: FakeClock

    async def advance(self, **delta: float) -> None:
        """Time passes: the reminders now due are sent, and cards that change by time alone
        (break-glass opening) are drawn again."""
        self.clock.advance(**delta)
        await self.bot.chaser.sweep()
        self.bot.publisher.kick()

    def replica(self) -> Bot:
        """Another replica: the same settings, policy and database, workers of its own."""
        services = self.bot.services
        return create_app(services.settings, services.engine, services.policy, clock=self.clock)

    def request(self, details: ChangeDetails, user: str = "U0ALICE") -> Change:
        """A change requested through workflows itself, for what no form asks (an emergency
        with a window): stored as a form's would be, its card posted by the publisher."""
        services = self.bot.services
        uow = SqlUnitOfWork(services.engine)
        change = process.request_change(uow, self.clock, services.policy, Actor(user), details)
        self.bot.publisher.kick()
        return change.change

    def trail(self, ref: str) -> list[ChainedEntry]:
        with Session(self.bot.services.engine) as session:
            return list(read_trail(session, ref=ref))

    def actions(self, ref: str) -> list[str]:
        return [event.entry.action for event in self.trail(ref)]


@asynccontextmanager
async def in_process(
    sqlite_template: Path, workdir: Path, policy: str = "", slack_workspace: Workspace | None = None
) -> AsyncIterator[InProcess]:
    database = workdir / "changebot.db"
    shutil.copyfile(sqlite_template, database)
    engine = make_engine(f"sqlite:///{database}")
    clock = FakeClock()
    try:
        async with SlackStandIn(slack_workspace or workspace()) as slack:
            settings = Settings(
                bot_token=slack.bot_token,
                signing_secret=SIGNING_SECRET,
                slack_api_url=slack.base_url,
                sweep_seconds=NEVER,
            )
            bot = create_app(settings, engine, parse_policy(policy or policy_toml()), clock=clock)
            async with TestServer(web_app(bot)) as server:
                url = str(server.make_url("/slack/events"))
                driver = SlackDriver(url, SIGNING_SECRET, slack, timeout=SLOW_MACHINE)
                yield InProcess(bot, slack, driver, clock)
    finally:
        engine.dispose()
