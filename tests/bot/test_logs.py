"""Log records carry their request ID, come out as JSON on request, and never show a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import logs
from bot.app import web_client
from bot.settings import Settings
from standin import SlackStandIn, Workspace

SECRET = "8f742231b10e8888abcd99a0b1c2d385"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.WithRequestId())
    handler.addFilter(logs.RedactSecrets([SECRET, "short"]))
    logger = logging.getLogger("tests.bot.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def test_tokens_and_secrets_are_redacted_from_messages_and_tracebacks(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = captured
    logger.debug("sending with Authorization: Bearer %s", "xoxb-1234-5678-abcdEFGH")
    try:
        raise RuntimeError(f"signing secret {SECRET} and app token xapp-1-A0-99-ff")
    except RuntimeError:
        logger.exception("failed")

    text = out.getvalue()
    assert "xoxb-1234" not in text and "xapp-1" not in text and SECRET not in text
    assert text.count(logs.REDACTED) >= 3
    assert "short" not in logs.RedactSecrets(["short"]).secrets  # too short to be a secret


def test_json_lines_carry_the_request_id_and_the_ref_when_known(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = captured
    token = logs.request_id.set("abc123")
    try:
        logger.info("approve %s by %s", "CHG-0007", "U0CAROL", extra={"ref": "CHG-0007"})
    finally:
        logs.request_id.reset(token)
    logger.info("outside any request")

    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["request_id"] == "abc123" and first["ref"] == "CHG-0007"
    assert first["message"] == "approve CHG-0007 by U0CAROL" and first["level"] == "INFO"
    assert second["request_id"] == "-" and "ref" not in second


def test_chatty_libraries_are_held_at_info(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    logging.getLogger("slack_sdk").setLevel(logging.DEBUG)
    logs.configure("json", secrets=[SECRET])
    try:
        assert not logging.getLogger("slack_sdk.web.async_base_client").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("slack_bolt").isEnabledFor(logging.DEBUG)
    finally:
        for name in logs.CHATTY:
            logging.getLogger(name).setLevel(logging.NOTSET)


class Spy(str):
    """A text that counts how often it is shown with repr(), as a debug line would show it."""

    shown = 0

    def __repr__(self) -> str:
        Spy.shown += 1
        return str.__repr__(self)


async def test_no_web_api_call_builds_a_debug_line_nobody_logs() -> None:
    """slack_sdk builds its debug line (the whole request and response) whenever its logger's
    own level is NOTSET; a form sent with views.open made that most of the call's cost."""
    workspace = Workspace()
    workspace.add_channel("C0CHANGES", "changes")
    async with SlackStandIn(workspace) as slack:
        client = web_client(Settings(bot_token=slack.bot_token, slack_api_url=slack.base_url))
        Spy.shown = 0
        await client.chat_postMessage(channel="C0CHANGES", text=Spy("deploying"))
        assert slack.calls_to("chat.postMessage")[-1].params["text"] == "deploying"
        assert Spy.shown == 0


def test_request_ids_are_twelve_hex_digits_distinct_and_cost_no_system_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_syscall(_: int) -> bytes:
        raise AssertionError("os.urandom called for a request ID")

    monkeypatch.setattr("os.urandom", no_syscall)
    ids = [logs.new_request_id() for _ in range(10_000)]
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == len(ids)
