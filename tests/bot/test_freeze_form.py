"""A change requested into a freeze is refused on the form's window, naming the freeze, and
nothing is stored; an emergency may still be declared in a freeze that allows it. The whole bot
in this process (tests/bot/in_process.py), the form submitted as Slack submits it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import ids
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually, policy_toml
from tests.e2e.steps import CHANGES, cards, normal_request, open_request_form

# The requests below plan their window an hour from now, for an hour, on billing-db.
_START = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
_IN_AN_HOUR = {
    ids.WINDOW_START: datetime.now(UTC) + timedelta(hours=1),
    ids.WINDOW_END: datetime.now(UTC) + timedelta(hours=2),
}
FREEZE = f"""
[[freeze]]
name = "Billing close"
reason = "Month-end invoicing runs."
services = ["billing-db"]
start = {_START.isoformat()}
end = {(_START + timedelta(hours=3)).isoformat()}

[[freeze]]
name = "Game day"
reason = "Failover drills all morning."
start = 2026-11-23T08:00:00
end = 2026-11-23T12:00:00
"""


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path, policy_toml(extra=FREEZE)) as served:
        yield served


async def test_a_request_into_a_freeze_is_refused_on_the_window(bot: InProcess) -> None:
    await open_request_form(bot.driver, bot.slack, "U0ALICE")
    answer = await bot.driver.submit_modal("U0ALICE", normal_request(**_IN_AN_HOUR))

    assert answer.status == 200, answer.text
    assert answer.body["response_action"] == "errors", answer.body
    (block_id,) = answer.body["errors"]
    assert block_id == ids.WINDOW_END
    assert (
        "“Billing close” (Month-end invoicing runs) is in force until"
        in (answer.body["errors"][block_id])
    )
    assert bot.actions("CHG-0001") == []
    assert bot.actions("FREEZE") == ["freeze_refused"]  # the refusal is on the record


async def test_the_same_request_on_a_service_outside_the_freeze_is_accepted(
    bot: InProcess,
) -> None:
    await open_request_form(bot.driver, bot.slack, "U0ALICE")
    answer = await bot.driver.submit_modal(
        "U0ALICE", normal_request(**{ids.SERVICES: "reporting"}, **_IN_AN_HOUR)
    )
    assert answer.status == 200 and not (answer.body or {}).get("errors"), answer.text
    await eventually(lambda: cards(bot.slack, CHANGES))


async def test_an_emergency_declared_in_a_freeze_goes_ahead_and_its_card_says_so(
    bot: InProcess,
) -> None:
    assert bot.clock.now() == datetime(2026, 11, 23, 9, tzinfo=UTC)  # inside "Game day"
    answer = await bot.driver.slash_command(
        "U0ALICE", "/change", "emergency Fail back the primary", channel="C0INCIDENT"
    )
    assert answer.status == 200 and "CHG-0001" in answer.text, answer.text
    card = (await eventually(lambda: cards(bot.slack, CHANGES)))[0]
    assert "Emergency in a freeze:* the freeze “Game day”" in str(card["blocks"])
    requested = bot.trail("CHG-0001")[0].entry
    assert requested.details["freezes"] == ["Game day"]
