"""Failure injection: slack_sdk sees the same rate limits, outages and timeouts as in production."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from standin import SlackStandIn


async def test_ratelimited_is_http_429_with_retry_after(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    slack.fail_next("chat.postMessage", error="ratelimited", retry_after=7)

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C0CHANGES", text="x")
    await client.chat_postMessage(channel="C0CHANGES", text="x")

    response = raised.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response["error"] == "ratelimited"
    assert [c.status for c in slack.calls] == [429, 200]
    assert slack.calls[0].params["text"] == "x"  # what the failed call asked for is kept
    assert len(slack.messages("C0CHANGES")) == 1  # a rate-limited call does nothing


async def test_slack_sdk_rate_limit_handler_retries_after_the_wait(slack: SlackStandIn) -> None:
    client = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.fail_next("chat.postMessage", retry_after=0)

    answer = await client.chat_postMessage(channel="C0CHANGES", text="eventually")

    assert answer["ok"] is True
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]


async def test_server_errors_are_http_5xx_and_retryable(slack: SlackStandIn) -> None:
    client = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.base_url,
        retry_handlers=[AsyncServerErrorRetryHandler(1, FixedValueRetryIntervalCalculator(0.01))],
    )
    slack.fail_next("chat.postMessage", error="500")
    slack.fail_next("users.info", error="503", times=2)

    await client.chat_postMessage(channel="C0CHANGES", text="x")
    with pytest.raises(SlackApiError) as raised:
        await client.users_info(user="U0ALICE")

    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 200]
    assert raised.value.response.status_code == 503


async def test_a_scheduled_method_error_comes_with_http_200(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    slack.fail_next("chat.update", error="edit_window_closed")

    with pytest.raises(SlackApiError) as raised:
        await client.chat_update(channel="C0CHANGES", ts="1.1", text="x")

    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == "edit_window_closed"


async def test_a_timeout_does_the_work_but_answers_too_late(slack: SlackStandIn) -> None:
    slack.client_timeout = 0.3
    impatient = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url, timeout=0.3)  # type: ignore[arg-type]
    slack.fail_next("chat.postMessage", error="timeout")

    with pytest.raises(asyncio.TimeoutError):
        await impatient.chat_postMessage(channel="C0CHANGES", text="did it post?")

    assert [m["text"] for m in slack.messages("C0CHANGES")] == ["did it post?"]
    assert slack.calls_to("chat.postMessage")[0].fault == "timeout"


async def test_random_failures_repeat_with_the_same_seed(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    async def outcomes() -> list[int]:
        slack.calls.clear()
        slack.fail_rate(0.5, kinds=["500", "ratelimited"], seed=42)
        for _ in range(20):
            with contextlib.suppress(SlackApiError):
                await client.auth_test()
        return [c.status for c in slack.calls]

    first, second = await outcomes(), await outcomes()

    assert first == second
    assert {429, 500, 200} <= set(first)


async def test_heal_ends_failures(client: AsyncWebClient, slack: SlackStandIn) -> None:
    slack.fail_rate(1.0, kinds=["500"], seed=1)
    slack.fail_next("auth.test", times=3)

    slack.heal()

    assert (await client.auth_test())["ok"] is True


async def test_random_failures_can_target_some_methods(
    client: AsyncWebClient, slack: SlackStandIn
) -> None:
    slack.fail_rate(1.0, kinds=["500"], seed=1, methods=["chat.postMessage"])

    assert (await client.auth_test())["ok"] is True
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C0CHANGES", text="x")


async def test_delay_all_slows_every_answer(client: AsyncWebClient, slack: SlackStandIn) -> None:
    slack.delay_all(0.2)

    started = time.monotonic()
    await client.auth_test()

    assert time.monotonic() - started >= 0.2


async def test_a_dropped_connection_loses_the_answer_but_not_the_post(
    slack: SlackStandIn,
) -> None:
    import aiohttp

    # No retry handlers: by default slack_sdk would resend, and post twice.
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url, retry_handlers=[])
    slack.fail_next("chat.postMessage", error="dropped")

    with pytest.raises(aiohttp.ClientError):
        await client.chat_postMessage(channel="C0CHANGES", text="landed anyway")

    assert [c.fault for c in slack.calls] == ["dropped"]
    assert [m["text"] for m in slack.messages("C0CHANGES")] == ["landed anyway"]
