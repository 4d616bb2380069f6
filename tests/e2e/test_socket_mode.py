"""`changebot serve --socket-mode`: no public address, the bot connects out to Slack."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import SIGNING_SECRET, BotProcess, eventually
from tests.e2e.steps import buttons, click, latest, request_change, review_and_test
from workflows.stages import Action


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(slack: SlackStandIn, workdir: Path) -> AsyncIterator[BotProcess]:
    process = await BotProcess(slack, workdir, socket_mode=True).start(wait_for="")
    try:
        await slack.socket.wait_connected(timeout=20)
        yield process
    except TimeoutError:
        raise AssertionError(f"the bot never connected:\n{process.output()}") from None
    finally:
        process.stop()


@pytest.fixture(scope="module")
def driver(slack: SlackStandIn, bot: BotProcess) -> SlackDriver:
    return SlackDriver(None, SIGNING_SECRET, slack, transport="socket")


async def test_a_change_is_requested_and_approved_over_socket_mode(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    card = await request_change(driver, slack, **{ids.TITLE: "Socket: rotate keys"})
    assert "Socket: rotate keys" in str(card["blocks"])
    assert slack.socket.sent and slack.socket.acks  # it all went over the WebSocket

    await review_and_test(driver, slack, card)
    await click(driver, slack, "U0CAROL", card, Action.APPROVE)

    authorised = await eventually(
        lambda: "start_deployment" in buttons(latest(slack, card)) and latest(slack, card)
    )
    assert "1 of 1" in str(authorised["blocks"])
    kinds = {envelope["type"] for envelope in slack.socket.sent}
    assert kinds == {"slash_commands", "interactive"}


async def test_each_envelope_is_logged_with_a_request_id_that_the_moves_it_made_carry(
    bot: BotProcess,
) -> None:
    # The change requested and approved above, over the WebSocket.
    text = await eventually(lambda: "approve CHG-" in bot.output() and bot.output())
    envelopes = dict(re.findall(r"\[([0-9a-f]{12})\] socket-mode (\w+) 200 [\d.]+ms$", text, re.M))
    moves = dict(re.findall(r"\[([^\]]+)\] (request_change|approve) CHG-\d+ by ", text, re.M))
    assert set(envelopes.values()) == {"slash_commands", "interactive"}
    assert {move: envelopes.get(request_id) for request_id, move in moves.items()} == {
        "request_change": "interactive",  # the form's submission
        "approve": "interactive",  # the click
    }


async def test_commands_are_answered_in_the_envelope_ack(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    help_reply = await driver.slash_command("U0ERIN", "/change", "help", channel="C0CHANGES")
    assert help_reply.ok and help_reply.body["response_type"] == "ephemeral"
    assert "/change list" in help_reply.body["blocks"][0]["text"]["text"]

    missing = await driver.slash_command("U0ERIN", "/change", "show CHG-9999")
    assert "There is no change CHG-9999." in missing.body["text"]


async def test_app_home_is_published_over_socket_mode(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    reply = await driver.open_home("U0ALICE")
    assert reply.ok
    home = await eventually(lambda: slack.home_view("U0ALICE"))
    assert "Socket: rotate keys" in str(home["blocks"])


async def test_the_bot_closes_its_connection_and_exits_0_on_sigterm(
    slack: SlackStandIn, bot: BotProcess
) -> None:
    # Last in this module: it stops the module's bot.
    code = await asyncio.to_thread(bot.stop, signal.SIGTERM)

    assert code == 0, bot.output()
    await eventually(lambda: not slack.socket.connections)
