"""How Slack delivers a request to the bot: a signed HTTP POST, or a Socket Mode envelope.

Either way Slack waits 3 seconds for the answer (the HTTP 200 body, or the envelope's ack) and
gives up after that; a `Reply` with status 0 records that nothing came in time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from standin.signing import signed_headers

if TYPE_CHECKING:
    from standin.webapi import SlackStandIn

# What Slack's servers send along with every request to an app.
SLACK_HEADERS = {"User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)", "Accept": "*/*"}


@dataclass(frozen=True)
class Reply:
    """The bot's answer: HTTP status (200 for a Socket Mode ack, 0 if none in time) and body."""

    status: int
    body: Any = None
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def timed_out(self) -> bool:
        return self.status == 0


@dataclass(frozen=True)
class Delivery:
    """One request from Slack, in both of its wire forms."""

    envelope_type: str  # slash_commands | interactive | events_api
    payload: dict[str, Any]  # the Socket Mode envelope's payload
    body: bytes  # the HTTP body
    content_type: str
    accepts_response_payload: bool = False
    retry_num: int | None = None
    retry_reason: str | None = None


class Transport(Protocol):
    async def send(self, delivery: Delivery) -> Reply: ...


class HttpTransport:
    """Signed POSTs to the bot's request URL, as Slack sends them over the internet."""

    def __init__(self, url: str, signing_secret: str, timeout: float) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.timeout = timeout

    async def send(self, delivery: Delivery) -> Reply:
        headers = signed_headers(delivery.body, self.signing_secret)
        if delivery.retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(delivery.retry_num)
            headers["X-Slack-Retry-Reason"] = delivery.retry_reason or "http_timeout"
        return await self.post(delivery.body, delivery.content_type, headers)

    async def post(self, body: bytes, content_type: str, headers: dict[str, str]) -> Reply:
        """POST `body` with exactly these extra headers (tests use it to forge signatures)."""
        all_headers = {**SLACK_HEADERS, "Content-Type": content_type, **headers}
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.url, data=body, headers=all_headers) as response,
            ):
                text = await response.text()
                return Reply(
                    response.status,
                    _json_or_none(text),
                    text,
                    dict(response.headers),
                    time.monotonic() - started,
                )
        except TimeoutError:
            return Reply(0, elapsed=time.monotonic() - started)


class SocketTransport:
    """Envelopes over the stand-in's Socket Mode WebSocket, to a bot connected there."""

    def __init__(self, standin: SlackStandIn, timeout: float) -> None:
        self.standin = standin
        self.timeout = timeout

    async def send(self, delivery: Delivery) -> Reply:
        started = time.monotonic()
        ack = await self.standin.on_loop(
            self.standin.socket.push(
                delivery.envelope_type,
                delivery.payload,
                accepts_response_payload=delivery.accepts_response_payload,
                retry_attempt=delivery.retry_num,
                retry_reason=delivery.retry_reason,
                timeout=self.timeout,
            )
        )
        elapsed = time.monotonic() - started
        if ack is None:
            return Reply(0, elapsed=elapsed)
        payload = ack.get("payload")
        return Reply(200, payload, json.dumps(payload) if payload else "", {}, elapsed)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
