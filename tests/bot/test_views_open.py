"""views.open sent straight through the Web API client's session, against the Slack stand-in:
the form opens, Slack's refusals come back by name, and a dropped connection or a short rate
limit is tried once more, as slack_sdk would."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.views_open import LONGEST_RETRY_AFTER, open_view, refusal
from standin import SlackStandIn

USER = "U0ALICE"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(client_timeout=1.0) as standin:
        yield standin


@pytest.fixture
async def client(slack: SlackStandIn) -> AsyncIterator[AsyncWebClient]:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
        client.session = session
        yield client


def form(slack: SlackStandIn, title: str = "New change") -> bytes:
    view = {
        "type": "modal",
        "callback_id": "request",
        "title": {"type": "plain_text", "text": title},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Tell us more."}}],
    }
    return json.dumps({"trigger_id": slack.issue_trigger(USER), "view": view}).encode()


def titles(slack: SlackStandIn) -> list[str]:
    return [modal["title"]["text"] for modal in slack.modals(USER)]


async def test_the_form_opens(slack: SlackStandIn, client: AsyncWebClient) -> None:
    assert await open_view(client, form(slack)) is None
    assert titles(slack) == ["New change"]
    (call,) = slack.calls_to("views.open")
    assert call.token == slack.bot_token


async def test_slack_refusing_the_form_says_why(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    body = form(slack)
    slack.expire_triggers()
    assert await open_view(client, body) == "expired_trigger_id"
    assert titles(slack) == []


async def test_a_wrong_token_is_refused_by_name(slack: SlackStandIn) -> None:
    client = AsyncWebClient(token="xoxb-not-ours", base_url=slack.base_url)
    async with aiohttp.ClientSession() as session:
        client.session = session
        assert await open_view(client, form(slack)) == "invalid_auth"


async def test_a_short_rate_limit_is_waited_out_once(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.fail_next("views.open", "ratelimited", retry_after=1)
    assert await open_view(client, form(slack)) is None
    assert titles(slack) == ["New change"]
    assert [call.status for call in slack.calls_to("views.open")] == [429, 200]


async def test_a_rate_limit_longer_than_the_trigger_lives_is_not_waited_for(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.fail_next("views.open", "ratelimited", retry_after=int(LONGEST_RETRY_AFTER) + 3)
    started = time.monotonic()
    assert await open_view(client, form(slack)) == "ratelimited"
    assert time.monotonic() - started < LONGEST_RETRY_AFTER
    assert len(slack.calls_to("views.open")) == 1


async def test_a_connection_dropped_after_the_form_opened_is_not_reported_as_a_failure(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.fail_next("views.open", "dropped")
    assert await open_view(client, form(slack)) is None
    assert titles(slack) == ["New change"]  # opened once, by the first try
    assert len(slack.calls_to("views.open")) == 2


async def test_an_answer_that_never_comes_is_reported(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.fail_next("views.open", "timeout")
    assert await open_view(client, form(slack)) == "Slack did not answer in time"


async def test_slack_out_of_reach_is_reported(slack: SlackStandIn) -> None:
    client = AsyncWebClient(token=slack.bot_token, base_url="http://127.0.0.1:9/api/")
    async with aiohttp.ClientSession() as session:
        client.session = session
        error = await open_view(client, form(slack))
    assert error == "could not reach Slack (ClientConnectorError)"


async def test_a_client_without_a_session_goes_through_slack_sdk(slack: SlackStandIn) -> None:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)
    assert client.session is None
    assert await open_view(client, form(slack, "First")) is None
    body = form(slack, "Second")
    slack.expire_triggers()
    assert await open_view(client, body) == "expired_trigger_id"
    assert titles(slack) == ["First"]


@pytest.mark.parametrize(
    "answer",
    [
        b'{"ok":true,"view":{"id":"V1"}}',
        b'{ "ok" : true }',
        b'\n{"ok": true, "view": {}}',
        b'{"warning":"superfluous_charset","ok":true,"view":{}}',  # ok not first: parsed
        b'{"view":{"id":"V1"},"response_metadata":{},"ok":true}',
    ],
)
def test_answers_that_say_the_view_opened(answer: bytes) -> None:
    assert refusal(200, answer) is None


@pytest.mark.parametrize(
    ("status", "answer", "error"),
    [
        (200, b'{"ok":false,"error":"expired_trigger_id"}', "expired_trigger_id"),
        (200, b'{"ok":true_ish}', "HTTP 200, not a Web API answer"),
        (200, b'{"ok":"true"}', "HTTP 200"),
        (200, b'{"ok":false}', "HTTP 200"),
        (429, b'{"ok":false,"error":"ratelimited"}', "ratelimited"),
        (502, b"<html>Bad Gateway</html>", "HTTP 502, not a Web API answer"),
        (503, b"", "HTTP 503, not a Web API answer"),
        (200, b"[true]", "HTTP 200, not a Web API answer"),
        (500, b'{"ok":true}', None),  # Slack's word, whatever the status
    ],
)
def test_answers_that_say_it_did_not(status: int, answer: bytes, error: str | None) -> None:
    assert refusal(status, answer) == error
