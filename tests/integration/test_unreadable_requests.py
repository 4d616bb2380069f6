"""Requests that are not HTTP changebot can read (a header or URL longer than it reads, a
Content-Length that lies or comes twice, no method, a body whose Content-Encoding lies) are
refused with a 400 and a JSON error, like every other refusal of the API, logged in a line
(no traceback), and write nothing. Raw bytes over a real socket to the runner `changebot
serve` uses, on a real database."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Engine

from tests.integration.api import Served, served

BODY = b'{"change": "CHG-1", "service": "payments", "environment": "production"}'
PATHS = ["/api/v1/gate", "/github/webhook", "/slack/events"]


@pytest_asyncio.fixture
async def api(engine: Engine) -> AsyncIterator[Served]:
    async with served(engine) as app:
        yield app


async def send(api: Served, raw: bytes) -> tuple[int, dict[str, str], Any]:
    """`raw` written to the server as it is; its answer read until the server closes."""
    server = api.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def post(path: str, *headers: bytes, body: bytes = BODY, length: bytes | None = None) -> bytes:
    length = str(len(body)).encode() if length is None else length
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: changebot", *headers]
    lines.append(b"Content-Length: " + length)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


UNREADABLE = {
    "a header too long": (
        lambda path: post(path, b"Authorization: Bearer cbt_" + b"x" * 9000),
        "too_large",
        "longer than 8,190 bytes",
    ),
    "a URL too long": (
        lambda path: post(path + "?" + "q" * 9000),
        "too_large",
        "longer than 8,190 bytes",
    ),
    "a Content-Length that is not a number": (
        lambda path: post(path, length=b"twelve"),
        "malformed",
        "Content-Length",
    ),
    "two Content-Lengths": (
        lambda path: post(path, b"Content-Length: 3"),
        "malformed",
        "Duplicate Content-Length",
    ),
    "too many headers": (
        lambda path: post(path, *(b"X-Noise-%d: 1" % i for i in range(200))),
        "malformed",
        "Too many headers",
    ),
    "no method": (lambda path: b"GARBAGE " + path.encode() + b"\r\n\r\n", "malformed", "method"),
    "TLS to the plain port": (
        lambda path: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
        "malformed",
        "HTTPS traffic on an HTTP port",
    ),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(UNREADABLE))
async def test_a_request_that_cannot_be_parsed_is_a_400_in_json_and_writes_nothing(
    api: Served, caplog: pytest.LogCaptureFixture, case: str, path: str
) -> None:
    make, error, says = UNREADABLE[case]
    before = api.events()
    with caplog.at_level(logging.INFO):
        status, headers, body = await send(api, make(path))
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert body["error"] == error
    assert says in body["message"]
    assert "x" * 100 not in body["message"]  # what was sent is not quoted back (a token?)
    assert api.events() == before
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]
    assert any(r.name == "bot.protocol" and says in r.getMessage() for r in caplog.records)


async def test_a_body_whose_content_encoding_lies_is_a_400_naming_it(
    api: Served, caplog: pytest.LogCaptureFixture
) -> None:
    secret = api.token()
    auth = b"Authorization: Bearer " + secret.encode()
    before = api.events()
    with caplog.at_level(logging.INFO):
        status, _, body = await send(
            api, post("/api/v1/gate", auth, b"Content-Encoding: gzip", b"Connection: close")
        )
    assert status == 400
    assert body == {
        "error": "malformed",
        "message": "The body could not be read: Can not decode content-encoding: gzip.",
    }
    assert api.events() == before
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


@pytest.mark.parametrize("path", ["/github/webhook", "/slack/events"])
async def test_a_lying_content_encoding_on_a_refused_request_is_logged_in_a_line(
    api: Served, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """Refused before its body mattered (unsigned), the body is drained after the answer:
    its failure to decode is a line in the log, not an "Unhandled exception"."""
    with caplog.at_level(logging.INFO):
        status, _, _ = await send(
            api, post(path, b"Content-Encoding: gzip", b"Connection: close", body=b"x" * 50)
        )
    assert 400 <= status < 500
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
