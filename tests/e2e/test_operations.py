"""Operations: a card deleted in Slack comes back, and /readyz tells a load balancer the truth."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from pathlib import Path

import aiohttp
from alembic import command
from alembic.config import Config

from bench.serving import APPROVE, APPROVER, all_shown, has_approve, seed_awaiting_approval
from bot import ids, memory
from standin import SlackDriver, SlackStandIn
from storage.db import make_engine
from storage.migrate import MIGRATIONS, status, upgrade
from tests.e2e.harness import (
    SIGNING_SECRET,
    SLOW_MACHINE,
    BotProcess,
    audit_trail,
    eventually,
    workspace,
)
from tests.e2e.steps import CHANGES, cards, click, request_change, thread_texts
from workflows.stages import Action


async def test_a_card_deleted_in_slack_is_posted_again_with_a_note(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    card = await request_change(driver, slack, title="Deleted card")
    modals = len(slack.modals("U0BOB"))
    await click(driver, slack, "U0BOB", card, Action.RECORD_REVIEW)
    await eventually(lambda: len(slack.modals("U0BOB")) > modals)
    # While Bob writes his review, someone deletes the card in Slack.
    slack.state.messages.delete(CHANGES, card["ts"], slack.workspace.bot_user_id)
    before = len(cards(slack))
    await driver.submit_modal("U0BOB", {ids.ASSESSMENT: "Fine.", ids.REVIEW_RISK: "low"})
    reposted = (await eventually(lambda: cards(slack)[before:]))[0]
    assert "Deleted card" in str(reposted["blocks"]) and reposted["ts"] != card["ts"]
    await eventually(lambda: any("deleted in Slack" in t for t in thread_texts(slack, reposted)))


async def test_readyz_is_200_only_while_the_schema_is_current(bot: BotProcess) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(bot.url + "/readyz") as response:
            assert response.status == 200
        # An operator rolls the database back a migration behind this bot's back.
        engine = make_engine(bot.env["DATABASE_URL"])
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "-1")
        assert not status(engine).is_current
        async with session.get(bot.url + "/readyz") as response:
            assert response.status == 503
            assert "run `changebot db upgrade`" in (await response.json())["error"]
        async with session.get(bot.url + "/healthz") as response:
            assert response.status == 200  # alive, just not ready
        upgrade(engine)
        async with session.get(bot.url + "/readyz") as response:
            assert response.status == 200
        engine.dispose()


async def test_serve_keeps_the_collector_out_of_a_burst(bot: BotProcess) -> None:
    """bot/memory.py: young collections every 50,000 allocations, not CPython's 700, and what
    start-up made frozen out of every collection (without both, full collections of 60 to 90
    ms came every second of a burst)."""
    line = r"collector: young objects every (\d+) allocations; (\d+) objects from start-up frozen"
    found = await eventually(lambda: re.search(line, bot.output()), timeout=10)
    assert int(found[1]) == memory.YOUNG
    assert int(found[2]) > 50_000  # modules, the app, the policy, the templates


async def test_the_bot_signs_in_to_slack_at_start_so_no_request_waits_for_it(
    slack: SlackStandIn, tmp_path: Path
) -> None:
    before = len(slack.calls_to("auth.test"))
    bot = await BotProcess(slack, tmp_path).start()
    try:
        await eventually(lambda: len(slack.calls_to("auth.test")) > before, timeout=5)
        driver = SlackDriver(bot.url + "/slack/events", SIGNING_SECRET, slack)
        reply = await driver.slash_command("U0ALICE", "/change", "help")
        assert reply.status == 200
        assert len(slack.calls_to("auth.test")) == before + 1
        assert "signed in to Slack as" in bot.output()
    finally:
        bot.stop()


async def test_a_stop_in_a_burst_still_makes_every_move_it_acknowledged(tmp_path: Path) -> None:
    """Moves wait for a lull in requests (bot/traffic.py); SIGTERM must not drop them."""
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    seed_awaiting_approval(url, 30)
    async with SlackStandIn(workspace()) as slack:
        bot = await BotProcess(slack, tmp_path, database_url=url).start()
        try:
            await all_shown(bot, timeout=60)
            driver = SlackDriver(
                bot.url + "/slack/events", SIGNING_SECRET, slack, timeout=SLOW_MACHINE
            )
            awaiting = [m for m in slack.messages(CHANGES) if has_approve(m)]
            assert len(awaiting) == 30
            bursting = True

            async def burst() -> None:  # keeps requests in flight: no lull comes
                while bursting:
                    await asyncio.gather(
                        *(driver.slash_command("U0ERIN", "/change", "help") for _ in range(4))
                    )

            noise = asyncio.ensure_future(burst())
            replies = await asyncio.gather(
                *(driver.click(APPROVER, card, APPROVE) for card in awaiting)
            )
            assert [r.status for r in replies] == [200] * 30
            code = await asyncio.to_thread(bot.stop, signal.SIGTERM)  # mid-burst
            bursting = False
            with contextlib.suppress(aiohttp.ClientError):
                await noise
        finally:
            bot.stop()
        assert code == 0
        approved = [event for event in audit_trail(bot) if event[2] == "approved"]
        assert len(approved) == 30 and {actor for _, actor, _ in approved} == {APPROVER}
