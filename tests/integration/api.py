"""The real HTTP app (`bot.server.web_app`) served in-process on a real database, for the
API's tests: requests go over a real socket, nothing of ours is mocked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from bot.app import Bot, create_app
from bot.protocol import Runner
from bot.server import web_app
from bot.settings import Settings
from storage import tokens
from storage.tables import AuditEventRow
from storage.uow import SqlUnitOfWork
from tests.integration.changes import APPROVER, PEER, POLICY, REQUESTER, WINDOW, normal_details
from tests.unit.fakes import FakeClock
from workflows import process
from workflows.model import Change
from workflows.policy import Policy
from workflows.tokens import Scope


@dataclass
class Served:
    """The app, its client, its database and its clock."""

    bot: Bot
    client: TestClient  # type: ignore[type-arg]
    engine: Engine
    clock: FakeClock
    policy: Policy

    def token(self, name: str = "ci-prod", *scopes: Scope) -> str:
        with Session(self.engine) as session:
            _, secret = tokens.create(
                session,
                name,
                frozenset(scopes or (Scope.GATE, Scope.DEPLOYMENTS)),
                "UOPS",
                self.clock.now(),
            )
        return secret

    def revoke(self, name: str) -> None:
        with Session(self.engine) as session:
            tokens.revoke(session, name, "UOPS", self.clock.now())

    def events(self) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(AuditEventRow)).one())

    def awaiting_approval(self, **fields: object) -> Change:
        """A Normal change for `payments`, reviewed and tested, waiting for its approval."""
        uow = SqlUnitOfWork(self.engine)
        change = process.request_change(
            uow, self.clock, POLICY, REQUESTER, normal_details(**fields)
        ).change
        process.record_review(
            uow, self.clock, POLICY, change.number, PEER, assessment="Fine.", risk=change.risk
        )
        return process.add_test_evidence(
            uow, self.clock, POLICY, change.number, PEER, evidence="Green in staging."
        )

    def approved(self, **fields: object) -> Change:
        """The same, approved: ready to deploy once its window opens (see in_window)."""
        return self.approve(self.awaiting_approval(**fields))

    def approve(self, change: Change) -> Change:
        """`change`, waiting for its approval, approved."""
        return process.approve(
            SqlUnitOfWork(self.engine), self.clock, POLICY, change.number, APPROVER
        )

    def stored(self, change: Change) -> Change:
        with SqlUnitOfWork(self.engine) as uow:
            return uow.changes.get(change.number)

    def in_window(self) -> None:
        self.clock.current = WINDOW.start + timedelta(minutes=1)

    async def ask(self, secret: str | None, **body: Any) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        response = await self.client.post("/api/v1/gate", json=body, headers=headers)
        return response.status, await response.json()


class AsServed(TestServer):
    """aiohttp's test server, with the runner `changebot serve` uses (bot/protocol.py)."""

    async def _make_runner(self, **kwargs: Any) -> Runner:
        return Runner(self.app, **kwargs)


@asynccontextmanager
async def served(
    engine: Engine, policy: Policy = POLICY, settings: Settings | None = None
) -> AsyncIterator[Served]:
    clock = FakeClock()
    settings = settings or Settings(
        bot_token="xoxb-test", signing_secret="0" * 32, slack_api_url="http://127.0.0.1:9/"
    )
    bot = create_app(settings, engine, policy, clock=clock)
    try:
        async with TestClient(AsServed(web_app(bot, background=False))) as client:
            yield Served(bot, client, engine, clock, policy)
    finally:
        if bot.github is not None:
            await bot.github.worker.app.close()
