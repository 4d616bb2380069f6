"""A real Bolt app accepts what the driver sends, over HTTP and over Socket Mode alike.

The same story runs on both transports: a command opens a modal, a bad submission shows
errors, a good one posts a message with a button, a colleague clicks it, Home gets published.
"""

from __future__ import annotations

import pytest

from standin import DriverError, SlackDriver, SlackStandIn
from standin.signing import signed_headers
from tests.standin.conftest import Bot

ALICE, BOB = "U0ALICE", "U0BOB"


@pytest.fixture(params=["http", "socket"])
def any_driver(request: pytest.FixtureRequest) -> SlackDriver:
    fixture = "driver" if request.param == "http" else "socket_driver"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


async def open_form(slack: SlackStandIn, driver: SlackDriver) -> None:
    reply = await driver.slash_command(ALICE, "/change", channel="changes")
    assert reply.ok
    await slack.wait_for(lambda: driver.open_modal_for(ALICE))


async def test_a_command_opens_the_bots_modal(slack: SlackStandIn, any_driver: SlackDriver) -> None:
    await open_form(slack, any_driver)

    modal = any_driver.open_modal_for(ALICE)
    assert modal is not None
    assert modal["callback_id"] == "new_change"
    assert slack.calls_to("views.open")[0].ok


async def test_validation_errors_keep_the_modal_open(
    slack: SlackStandIn, any_driver: SlackDriver
) -> None:
    await open_form(slack, any_driver)

    reply = await any_driver.submit_modal(ALICE, {"title": "bad", "risk": "high"})

    assert reply.body == {"response_action": "errors", "errors": {"title_block": "Too vague"}}
    assert any_driver.open_modal_for(ALICE) is not None


async def test_a_good_submission_closes_the_modal_and_posts(
    slack: SlackStandIn, any_driver: SlackDriver
) -> None:
    await open_form(slack, any_driver)

    reply = await any_driver.submit_modal(ALICE, {"title": "Upgrade DB", "risk": "low"})
    [message] = await slack.wait_for(lambda: slack.messages("changes"))

    assert reply.ok and reply.body is None
    assert any_driver.open_modal_for(ALICE) is None
    assert message["text"] == "Upgrade DB (low)"


async def test_clicking_a_button_in_a_message_reaches_the_bot(
    slack: SlackStandIn, any_driver: SlackDriver
) -> None:
    await open_form(slack, any_driver)
    await any_driver.submit_modal(ALICE, {"title": "Upgrade DB", "risk": "low"})
    [message] = await slack.wait_for(lambda: slack.messages("changes"))

    reply = await any_driver.click(BOB, message, "approve")
    await slack.wait_for_calls("chat.update")

    assert reply.ok
    assert slack.messages("changes")[0]["text"] == "Upgrade DB approved by <@U0BOB>"


async def test_opening_home_lets_the_bot_publish_it(
    slack: SlackStandIn, any_driver: SlackDriver
) -> None:
    await any_driver.open_home(BOB)
    await slack.wait_for(lambda: slack.home_view(BOB))

    reply = await any_driver.click(BOB, None, "approve")

    assert reply.ok
    assert slack.home_view(BOB)["type"] == "home"  # type: ignore[index]


async def test_clicking_what_is_not_there_is_a_test_error(any_driver: SlackDriver) -> None:
    with pytest.raises(DriverError, match="approve"):
        await any_driver.click(BOB, None, "approve")


async def test_bolt_rejects_a_forged_signature(driver: SlackDriver) -> None:
    body = b"command=%2Fchange&user_id=U0ALICE"
    forged = signed_headers(body, "not-the-signing-secret")

    reply = await driver.post_raw(body, headers=forged)

    assert reply.status == 401


async def test_bolt_sees_event_retries_as_slack_sends_them(
    driver: SlackDriver, http_bot: Bot
) -> None:
    reply = await driver.send_event(
        {"type": "app_home_opened", "user": BOB, "tab": "home"}, retry_num=2
    )

    assert reply.ok
    assert http_bot.events[0]["user"] == BOB
