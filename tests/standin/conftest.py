"""Fixtures: a running stand-in, a slack_sdk client for it, a small Bolt app, a recorder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from standin import SlackDriver, SlackStandIn
from tests.standin.sample_bot import SIGNING_SECRET, build_app


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as standin:
        yield standin


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)


@dataclass
class Bot:
    app: AsyncApp
    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def http_bot(slack: SlackStandIn) -> AsyncIterator[Bot]:
    """The sample app served over HTTP on a free port, as `changebot serve` would be."""
    events: list[dict[str, Any]] = []
    app = build_app(slack.bot_token, slack.base_url, events)
    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Bot(app, f"http://127.0.0.1:{port}/slack/events", events)
    await runner.cleanup()


@pytest.fixture
async def socket_bot(slack: SlackStandIn) -> AsyncIterator[Bot]:
    """The sample app connected over Socket Mode, with Bolt's own handler."""
    events: list[dict[str, Any]] = []
    app = build_app(slack.bot_token, slack.base_url, events)
    # Bolt's handler calls apps.connections.open through app.client, so on the stand-in too.
    handler = AsyncSocketModeHandler(app, slack.app_token)
    await handler.connect_async()
    await slack.socket.wait_connected()
    yield Bot(app, events=events)
    await handler.close_async()


@pytest.fixture
def driver(slack: SlackStandIn, http_bot: Bot) -> SlackDriver:
    return SlackDriver(http_bot.url, SIGNING_SECRET, slack)


@pytest.fixture
def socket_driver(slack: SlackStandIn, socket_bot: Bot) -> SlackDriver:
    return SlackDriver(None, SIGNING_SECRET, slack, transport="socket")


@dataclass
class Recorded:
    """One request as the bot's web server received it."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """A stand-in bot that records requests and answers with `answer` after `delay` s."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answer: dict[str, Any] | None = None
    delay: float = 0.0


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    recorder = Recorder()

    async def record(request: web.Request) -> web.Response:
        recorder.requests.append(Recorded(dict(request.headers), await request.read()))
        await asyncio.sleep(recorder.delay)
        if recorder.answer is None:
            return web.Response()
        return web.json_response(recorder.answer)

    app = web.Application()
    app.router.add_post("/slack/events", record)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield recorder
    await runner.cleanup()


@pytest.fixture
def recording_driver(slack: SlackStandIn, recorder: Recorder) -> SlackDriver:
    # Generous: a loaded machine may take over half a second to answer a trivial request; the
    # deadline itself is tested with a driver of its own (test_driver_wire).
    return SlackDriver(recorder.url, SIGNING_SECRET, slack, timeout=10.0)
