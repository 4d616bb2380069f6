"""An emergency's card offers "Break glass" only once break-glass is open: until then it says
when it opens, and at that moment the publisher draws the card again, with the button, though
nothing happened to the change."""

from __future__ import annotations

import json

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from bot import ids
from bot.publisher import Publisher
from standin import SlackStandIn
from storage.uow import SqlUnitOfWork
from tests.e2e.harness import policy_toml, workspace
from tests.unit.fakes import FakeClock
from workflows import emergency
from workflows.model import Actor
from workflows.policy import parse_policy
from workflows.stages import Action

POLICY = parse_policy(policy_toml())  # break-glass after 4 s
BREAK_GLASS = ids.card_action_id(Action.BREAK_GLASS)


async def test_the_break_glass_button_appears_when_break_glass_opens(engine: Engine) -> None:
    clock = FakeClock()
    emergency.declare_emergency(
        SqlUnitOfWork(engine), clock, POLICY, Actor("U0ALICE"), "Roll back checkout"
    )
    async with SlackStandIn(workspace()) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)
        publisher = Publisher(engine, client, POLICY, clock)
        await publisher.sweep()
        (posted,) = [m for m in slack.messages("C0CHANGES") if m.get("blocks")]
        before = json.dumps(slack.message("C0CHANGES", posted["ts"]))

        clock.advance(seconds=3)
        quiet = await publisher.sweep()
        clock.advance(seconds=1)
        redrawn = await publisher.sweep()
        after = json.dumps(slack.message("C0CHANGES", posted["ts"]))

    assert BREAK_GLASS not in before and "Break-glass opens" in before
    assert quiet == 0  # nothing is due before it opens
    assert redrawn == 1
    assert BREAK_GLASS in after and "Break-glass is open" in after
    assert len(slack.calls_to("chat.update")) == 1
