"""Over Socket Mode an envelope is handled as an HTTP request is: counted in the replica's
traffic while it is handled (so moves and the publisher wait for a lull, as over HTTP), given
a request ID for every log line it causes, and logged in a line of its own."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from slack_bolt.context.ack.async_ack import AsyncAck

from bot import logs
from bot.app import create_app
from bot.settings import Settings
from bot.socket_mode import SocketModeHandler
from standin import SlackDriver, SlackStandIn
from storage.db import make_engine
from storage.migrate import upgrade
from tests.e2e.harness import SIGNING_SECRET, policy_toml, workspace
from workflows.policy import parse_policy


async def test_an_envelope_counts_as_traffic_and_carries_a_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'changebot.db'}")
    upgrade(engine)
    async with SlackStandIn(workspace()) as slack:
        settings = Settings(
            database_url=str(engine.url),
            bot_token=slack.bot_token,
            app_token=slack.app_token,
            slack_api_url=slack.base_url,
        )
        bot = create_app(settings, engine, parse_policy(policy_toml()), socket_mode=True)
        traffic = bot.services.traffic
        seen: list[tuple[int, str]] = []

        @bot.app.command("/probe")
        async def probe(ack: AsyncAck) -> None:
            seen.append((traffic.in_flight, logs.request_id.get()))
            await ack("probed")

        handler = SocketModeHandler(bot, slack.app_token)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        await slack.socket.wait_connected()
        try:
            driver = SlackDriver(None, SIGNING_SECRET, slack, transport="socket")
            with caplog.at_level(logging.INFO, logger="bot.socket_mode"):
                reply = await driver.slash_command("U0ALICE", "/probe")
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
            engine.dispose()

    assert reply.ok and reply.body["text"] == "probed"
    [(in_flight, request_id)] = seen
    assert in_flight == 1  # the publisher and deferred moves saw a request in flight
    assert re.fullmatch("[0-9a-f]{12}", request_id)
    assert traffic.in_flight == 0 and traffic.last_seen > float("-inf")
    [line] = [r.getMessage() for r in caplog.records if r.name == "bot.socket_mode"]
    assert re.fullmatch(r"socket-mode slash_commands 200 \d+\.\dms", line)
