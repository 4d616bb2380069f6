"""Work done after the acknowledgement fails as work before it does: the person who clicked
hears the refusal's sentence, or a reference to quote; never silence."""

from __future__ import annotations

import re
from pathlib import Path

from bot import ids
from bot.app import create_app
from bot.listeners.buttons import _make_move
from bot.listeners.tell import Where
from bot.settings import Settings
from standin import SlackStandIn
from storage.db import make_engine
from storage.migrate import upgrade
from tests.e2e.harness import policy_toml, workspace
from workflows import process
from workflows.policy import parse_policy


async def test_an_unexpected_failure_after_a_click_is_told_with_a_reference(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'changebot.db'}")
    upgrade(engine)
    async with SlackStandIn(workspace()) as slack:
        settings = Settings(bot_token=slack.bot_token, slack_api_url=slack.base_url)
        bot = create_app(settings, engine, parse_policy(policy_toml()))
        where = Where("U0CAROL", "C0CHANGES")
        (tmp_path / "changebot.db").unlink()  # the database is gone from under the replica
        engine.dispose()
        try:
            await _make_move(where, bot.services, process.approve, ids.Target(1))
        finally:
            engine.dispose()

        (told,) = slack.calls_to("chat.postEphemeral")

    assert told.params["user"] == "U0CAROL" and told.params["channel"] == "C0CHANGES"
    assert re.fullmatch(
        r"Something went wrong on my side, and it may not have been done\. Quote reference "
        r"[0-9a-f]{8} to whoever runs changebot\.",
        told.params["text"],
    )


async def test_a_refusal_after_a_click_is_told_in_its_own_words(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'changebot.db'}")
    upgrade(engine)
    async with SlackStandIn(workspace()) as slack:
        settings = Settings(bot_token=slack.bot_token, slack_api_url=slack.base_url)
        bot = create_app(settings, engine, parse_policy(policy_toml()))
        try:
            await _make_move(
                Where("U0CAROL", "C0CHANGES"), bot.services, process.approve, ids.Target(42)
            )
        finally:
            engine.dispose()

        (told,) = slack.calls_to("chat.postEphemeral")

    assert told.params["text"] == "There is no change CHG-0042."
