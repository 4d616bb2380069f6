"""The stand-in's Socket Mode endpoint works with slack_sdk's aiohttp SocketModeClient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from standin import SlackStandIn


@pytest.fixture
async def received(slack: SlackStandIn) -> AsyncIterator[list[dict[str, Any]]]:
    """A connected SocketModeClient that acks every request with a text answer."""
    messages: list[dict[str, Any]] = []

    async def record(
        _: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None
    ) -> None:
        messages.append(message)

    async def answer(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        reply = {"text": f"got {request.type}"} if request.accepts_response_payload else None
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id, reply))

    client = SocketModeClient(
        app_token=slack.app_token, web_client=AsyncWebClient(base_url=slack.base_url)
    )
    client.message_listeners.append(record)
    client.socket_mode_request_listeners.append(answer)
    await client.connect()
    await slack.socket.wait_connected()
    yield messages
    await client.close()


async def test_client_connects_through_apps_connections_open_and_gets_hello(
    slack: SlackStandIn, received: list[dict[str, Any]]
) -> None:
    await slack.wait_for(lambda: received)

    assert received[0]["type"] == "hello"
    assert received[0]["connection_info"]["app_id"] == slack.workspace.app_id
    assert [c.method for c in slack.calls] == ["apps.connections.open"]


async def test_envelope_round_trip_returns_the_ack_payload(
    slack: SlackStandIn, received: list[dict[str, Any]]
) -> None:
    ack = await slack.socket.push(
        "slash_commands", {"command": "/change"}, accepts_response_payload=True
    )

    assert ack is not None
    assert ack["payload"] == {"text": "got slash_commands"}
    envelope = received[-1]
    assert envelope["payload"] == {"command": "/change"}
    assert ack["envelope_id"] == envelope["envelope_id"]


async def test_events_carry_retry_fields_and_ack_without_payload(
    slack: SlackStandIn, received: list[dict[str, Any]]
) -> None:
    ack = await slack.socket.push(
        "events_api",
        {"type": "event_callback"},
        accepts_response_payload=False,
        retry_attempt=1,
        retry_reason="timeout",
    )

    assert ack is not None and "payload" not in ack
    assert (received[-1]["retry_attempt"], received[-1]["retry_reason"]) == (1, "timeout")


async def test_an_unacknowledged_envelope_times_out(slack: SlackStandIn) -> None:
    url = (
        await AsyncWebClient(base_url=slack.base_url).apps_connections_open(
            app_token=slack.app_token
        )
    )["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as silent:
        hello = await silent.receive_json()
        ack = await slack.socket.push(
            "interactive", {}, accepts_response_payload=False, timeout=0.1
        )

    assert hello["type"] == "hello"
    assert ack is None


async def test_a_ticket_works_once(slack: SlackStandIn) -> None:
    url = slack.socket.issue_url()
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url):
            pass
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url)


async def test_disconnect_makes_the_client_reconnect(
    slack: SlackStandIn, received: list[dict[str, Any]]
) -> None:
    [first] = slack.socket.connections

    await slack.socket.disconnect_all()

    await slack.wait_for(lambda: slack.socket.connections == [] or first.closed)
    await slack.wait_for(lambda: slack.socket.connections and slack.socket.connections[-1] != first)
    ack = await slack.socket.push("interactive", {}, accepts_response_payload=False)

    assert ack is not None
    assert len(slack.calls_to("apps.connections.open")) == 2
