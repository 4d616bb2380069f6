"""The stand-in can run in a background thread, for synchronous tests and across event loops."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient as AsyncSocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from standin import SlackDriver, StandInThread, SyncSlackDriver
from tests.standin.sample_bot import SIGNING_SECRET


class EchoHandler(BaseHTTPRequestHandler):
    """A synchronous 'bot' that acks everything with the request's Content-Type."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"seen": self.headers["Content-Type"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    server.shutdown()
    server.server_close()


def test_the_sync_web_client_talks_to_a_threaded_stand_in() -> None:
    with StandInThread() as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        client.chat_postMessage(channel="C0CHANGES", text="from a sync test")
        slack.fail_next("chat.postMessage", error="not_in_channel")
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="C0CHANGES", text="x")

    assert [m["text"] for m in slack.messages("C0CHANGES")] == ["from a sync test"]
    assert raised.value.response["error"] == "not_in_channel"


def test_the_sync_driver_sends_to_the_bot(echo_url: str) -> None:
    with StandInThread() as slack:
        driver = SyncSlackDriver(SlackDriver(echo_url, SIGNING_SECRET, slack))

        command = driver.slash_command("U0ALICE", "/change", "hello")
        event = driver.send_event({"type": "app_mention", "text": "hi"})

    assert command.body == {"seen": "application/x-www-form-urlencoded"}
    assert event.body == {"seen": "application/json"}


async def test_socket_mode_envelopes_cross_from_the_tests_loop_to_the_stand_ins() -> None:
    async def answer(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        reply = {"text": request.payload["command"]}
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id, reply))

    with StandInThread() as slack:
        bot = AsyncSocketModeClient(
            slack.app_token, web_client=AsyncWebClient(base_url=slack.base_url)
        )
        bot.socket_mode_request_listeners.append(answer)
        await bot.connect()
        try:
            driver = SlackDriver(None, SIGNING_SECRET, slack, transport="socket")
            reply = await driver.slash_command("U0ALICE", "/change")
        finally:
            await bot.close()

    assert reply.body == {"text": "/change"}
