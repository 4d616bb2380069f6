"""`changebot demo`: the whole story on one machine, with no Slack workspace.

Starts the Slack stand-in and the bot on loopback with SQLite in a temporary folder, runs a
Normal change through all five stages with four people and a Standard change from the
catalog, then prints each thread as a person reads it and the audit trail. The Normal change
is deployed by a pipeline: it asks the deploy gate before approval (and is held) and after
(and goes on), then reports its deployment on the change, all over the bot's HTTP API.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from sqlmodel import Session

from bot import ids
from bot.app import create_app
from bot.protocol import Runner
from bot.server import web_app
from bot.settings import Settings
from standin import SlackDriver, SlackStandIn, Workspace
from standin.inputs import stateful_elements
from storage import migrate, tokens
from storage.db import make_engine
from storage.repositories import read_head, read_trail
from storage.uow import read_session
from workflows.audit import verify
from workflows.policy import parse_policy
from workflows.stages import Action
from workflows.tokens import Scope

T = TypeVar("T")
SECRET = "0123456789abcdef0123456789abcdef"
PEOPLE = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0DAVE": "dave"}
CHANNEL = "C0CHANGES"
PIPELINE = "ci-prod"

POLICY = """
[policy]
name = "Demo policy"
owner = "U0CAROL"
last_reviewed = 2026-06-01

[channels]
changes = "C0CHANGES"

[approvers]
users = ["U0CAROL"]
groups = ["S0APPROVERS"]

[approvals]
normal = 1
normal_high_risk = 2

[[scope]]
id = "database"
name = "Database schema change or data migration"

[[scope]]
id = "code"
name = "Code deployment"

[[catalog]]
id = "restart-service"
name = "Rolling restart of a stateless service"
version = "3"
runbook = "https://runbooks.example.com/rolling-restart"
scope = "code"
"""


def run(out: Callable[[str], None] = print) -> int:
    with tempfile.TemporaryDirectory(prefix="changebot-demo-") as folder:
        return asyncio.run(_demo(Path(folder), out))


async def _demo(folder: Path, out: Callable[[str], None]) -> int:
    workspace = Workspace()
    for user_id, name in PEOPLE.items():
        workspace.add_user(user_id, name)
    workspace.add_channel(CHANNEL, "changes", members=list(PEOPLE))
    workspace.set_usergroup("S0APPROVERS", ["U0DAVE"])
    async with SlackStandIn(workspace) as slack:
        settings = Settings(
            database_url=f"sqlite:///{folder / 'changebot.db'}",
            bot_token=slack.bot_token,
            signing_secret=SECRET,
            slack_api_url=slack.base_url,
        )
        engine = make_engine(settings.database_url)
        migrate.upgrade(engine)
        bot = create_app(settings, engine, parse_policy(POLICY, "demo policy"))
        runner = Runner(web_app(bot), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        driver = SlackDriver(f"http://127.0.0.1:{port}/slack/events", SECRET, slack)
        with Session(engine) as session:
            scopes = frozenset({Scope.GATE, Scope.DEPLOYMENTS})
            _, secret = tokens.create(session, PIPELINE, scopes, "U0ALICE", datetime.now(UTC))
        started = time.monotonic()
        try:
            async with _Pipeline(f"http://127.0.0.1:{port}/api/v1", secret) as pipeline:
                script = _Script(driver, slack, pipeline)
                normal = await script.normal_change()
                standard = await script.standard_change()
                await asyncio.sleep(0.3)
        finally:
            await runner.cleanup()
        took = time.monotonic() - started
        for title, card in (("A Normal change", normal), ("A Standard change", standard)):
            out(f"\n━━ {title}: the thread in #changes ━━")
            for line in _thread(slack, card):
                out(line)
        out(f"\n━━ The pipeline {PIPELINE}, deploying the Normal change ━━")
        for line in pipeline.said:
            out(line)
        out("\n━━ The audit trail ━━")
        with read_session(engine) as session:
            events = list(read_trail(session))
            who = [PEOPLE.get(e.entry.actor, e.entry.actor) for e in events]
            refs, actors = (
                max(map(len, x), default=0) for x in ([e.entry.ref for e in events], who)
            )
            for e, actor in zip(events, who, strict=True):
                x = e.entry
                moved = f"{x.from_stage} → {x.to_stage}" if x.from_stage or x.to_stage else ""
                out(
                    f"#{e.seq:<3} {x.at:%H:%M:%S} {x.ref:<{refs}} {actor:<{actors}}"
                    f" {x.action:<24} {moved:<19} {e.hash[:12]}"
                )
            count, broken = verify(events, read_head(session))
        out(f"\nAudit chain: {'intact' if broken is None else broken} ({count} events).")
        out(f"Ran in {took:.1f}s against the local Slack stand-in; nothing left this machine.")
        return 0 if broken is None else 1


class _Pipeline:
    """A CI job that deploys billing-db: it asks the gate, and reports what it deploys, over
    the API as `changebot gate` and `changebot deployment` would; what it was told is kept."""

    def __init__(self, api: str, secret: str) -> None:
        self.api = api
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.said: list[str] = []
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> _Pipeline:
        self._session = aiohttp.ClientSession(headers=self.headers)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def gate(self, ref: str) -> str:
        body = await self._call("POST", "gate", {"change": ref, **TARGET})
        reasons = " ".join(body.get("reasons") or [])
        self.said.append(f"$ changebot gate {ref} --service billing-db --environment production")
        self.said.append(f"  {body['status']}: {_plain(reasons)}")
        return str(body["status"])

    async def deployed(self, ref: str, run: str) -> None:
        path = f"changes/{ref}/deployments/{run}"
        started = await self._call("PUT", path, {**TARGET, "triggered_by": "U0ALICE"})
        self.said.append(f"$ changebot deployment start {ref} --id {run}  ->  {started['stage']}")
        finished = await self._call("PUT", f"{path}/outcome", {"outcome": "successful"})
        self.said.append(
            f"$ changebot deployment finish {ref} --id {run} --outcome successful  ->  "
            f"{finished['stage']}"
        )

    async def _call(self, method: str, path: str, body: dict[str, str]) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.request(method, f"{self.api}/{path}", json=body) as response:
            answer: dict[str, Any] = await response.json()
            if response.status >= 400:
                raise RuntimeError(f"the gate refused the demo's {method} {path}: {answer}")
            return answer


TARGET = {"service": "billing-db", "environment": "production"}


class _Script:
    def __init__(self, driver: SlackDriver, slack: SlackStandIn, pipeline: _Pipeline) -> None:
        self.driver, self.slack, self.pipeline = driver, slack, pipeline

    async def normal_change(self) -> dict[str, Any]:
        start = datetime.now(UTC) - timedelta(minutes=1)
        card = await self.request(
            "U0ALICE",
            {
                ids.TITLE: "Upgrade Postgres 16.3 → 16.4 on billing-db",
                ids.SCOPE: "database",
                ids.DESCRIPTION: "Minor upgrade of the primary and both replicas, one at a time.",
                ids.SERVICES: "billing-db, invoicing",
                ids.RISK: "medium",
                ids.IMPACT: "medium",
                ids.ROLLBACK_PLAN: "Fail over to the untouched replica, then rebuild.",
                ids.WINDOW_START: start,
                ids.WINDOW_END: start + timedelta(hours=1),
            },
        )
        await self.form(
            "U0BOB",
            card,
            Action.RECORD_REVIEW,
            {
                ids.ASSESSMENT: "Replica lag is low; failover was drilled last week.",
                ids.REVIEW_RISK: "high",
            },
        )
        await self.form(
            "U0ALICE",
            card,
            Action.ADD_TEST_EVIDENCE,
            {
                ids.EVIDENCE: "Upgraded staging-billing; integration suite and smoke tests green.",
            },
        )
        ref = _ref(self.latest(card))
        # The pipeline is held until the change is approved in Slack, then goes on by itself.
        await self.pipeline.gate(ref)
        await self.click("U0CAROL", card, Action.APPROVE)
        await self.click("U0DAVE", card, Action.APPROVE)
        await self.until(
            lambda: ids.card_action_id(Action.START_DEPLOYMENT) in str(self.latest(card))
        )
        if await self.pipeline.gate(ref) == "allowed":
            await self.pipeline.deployed(ref, "run-1")
        await self.until(lambda: "Closed" in _card_text(self.latest(card)))
        return card

    async def standard_change(self) -> dict[str, Any]:
        start = datetime.now(UTC) + timedelta(minutes=30)
        await self.driver.slash_command("U0BOB", "/change", channel=CHANNEL)
        await self.until(lambda: self.driver.open_modal_for("U0BOB"))
        modal = self.driver.open_modal_for("U0BOB")
        await self.driver.click("U0BOB", modal, ids.CLASSIFICATION, "standard")
        # The form asks for a procedure once the bot has redrawn it for Standard (the word
        # alone is in the first form too, in the classifications' descriptions).
        await self.until(lambda: _asks(self.driver.open_modal_for("U0BOB"), ids.PROCEDURE))
        card = await self.submit(
            "U0BOB",
            {
                ids.TITLE: "Rolling restart of checkout-api",
                ids.PROCEDURE: "restart-service",
                ids.SERVICES: "checkout-api",
                ids.WINDOW_START: start,
                ids.WINDOW_END: start + timedelta(minutes=20),
            },
        )
        await self.click("U0BOB", card, Action.START_DEPLOYMENT)
        await self.form("U0BOB", card, Action.RECORD_OUTCOME, {ids.OUTCOME: "successful"})
        return card

    async def request(self, user: str, values: dict[str, Any]) -> dict[str, Any]:
        await self.driver.slash_command(user, "/change", channel=CHANNEL)
        await self.until(lambda: self.driver.open_modal_for(user))
        return await self.submit(user, values)

    async def submit(self, user: str, values: dict[str, Any]) -> dict[str, Any]:
        before = len(self.cards())
        await self.driver.submit_modal(user, values)
        return (await self.until(lambda: self.cards()[before:]))[0]

    def cards(self) -> list[dict[str, Any]]:
        return [m for m in self.slack.messages(CHANNEL) if m.get("blocks")]

    def latest(self, card: dict[str, Any]) -> dict[str, Any]:
        return self.slack.message(CHANNEL, card["ts"]) or card

    async def click(self, user: str, card: dict[str, Any], action: Action) -> None:
        action_id = ids.card_action_id(action)
        await self.until(lambda: action_id in str(self.latest(card).get("blocks")))
        await self.driver.click(user, self.latest(card), action_id)

    async def form(
        self, user: str, card: dict[str, Any], action: Action, values: dict[str, Any]
    ) -> None:
        before = len(self.slack.modals(user))
        await self.click(user, card, action)
        await self.until(lambda: len(self.slack.modals(user)) > before)
        await self.driver.submit_modal(user, values)

    async def until(self, check: Callable[[], T], timeout: float = 10.0) -> T:
        deadline = time.monotonic() + timeout
        while not (found := check()):
            if time.monotonic() > deadline:
                raise RuntimeError("the demo got stuck: the bot did not answer in time")
            await asyncio.sleep(0.02)
        return found


def _ref(card: dict[str, Any]) -> str:
    found = re.search(r"CHG-\d+", _card_text(card))
    if found is None:
        raise RuntimeError("the demo's card names no change")
    return found.group(0)


def _thread(slack: SlackStandIn, card: dict[str, Any]) -> list[str]:
    messages = slack.thread(CHANNEL, card["ts"])
    root, replies = messages[0], messages[1:]
    lines = [_plain(_card_text(root))]
    for reply in replies:
        first, *more = _plain(reply.get("text", "")).splitlines() or [""]
        lines += [f"  └ {first}", *(f"    {line}" for line in more)]
    return lines


def _asks(view: dict[str, Any] | None, action_id: str) -> bool:
    """Whether the form has an input `action_id`."""
    blocks = (view or {}).get("blocks") or []
    return any(element.get("action_id") == action_id for _, element in stateful_elements(blocks))


def _card_text(message: dict[str, Any]) -> str:
    parts = []
    for block in message.get("blocks") or []:
        if block.get("type") in ("header", "section", "context"):
            fields = list(block.get("fields") or [])
            texts = [block.get("text"), *fields, *list(block.get("elements") or [])]
            parts += [t["text"] for t in texts if isinstance(t, dict) and t.get("text")]
    return "\n".join(parts)


def _plain(text: str) -> str:
    """Render Slack mrkdwn roughly as a Slack client shows it."""
    text = re.sub(r"<@(U\w+)>", lambda m: "@" + PEOPLE.get(m.group(1), m.group(1)), text)
    text = re.sub(r"<!subteam\^(\w+)(\|[^>]*)?>", lambda m: "@approvers", text)
    text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text


if __name__ == "__main__":
    sys.exit(run())
