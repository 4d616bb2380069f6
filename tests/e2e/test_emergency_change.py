"""An emergency change declared mid-incident, in one line, by a real `changebot serve`.

How it is then chased (reminders, escalations, break-glass opening, the review) waits on time,
so it is proven on a fake clock in tests/bot/test_chase_in_process.py; tests/e2e/
test_chase_replicas.py proves the real timer sends each reminder once across replicas."""

from __future__ import annotations

import re
from typing import Any

from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import eventually
from tests.e2e.steps import CHANGES, thread_texts

INCIDENT = "C0INCIDENT"


async def card_of(slack: SlackStandIn, channel: str, ref: str) -> dict[str, Any]:
    found = await eventually(
        lambda: [m for m in slack.messages(channel) if ref in str(m.get("blocks") or "")]
    )
    return found[0]


async def test_an_emergency_is_declared_in_one_line_and_shown_where_it_was_declared(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    line = "Roll back checkout to v41, payments failing https://incidents.example.com/42"
    answer = await driver.slash_command("U0ALICE", "/change", f"emergency {line}", channel=INCIDENT)
    assert answer.status == 200 and "CHG-" in answer.text
    assert answer.elapsed < 3.0
    ref = re.search(r"CHG-\d+", answer.text).group(0)  # type: ignore[union-attr]

    card = await card_of(slack, CHANGES, ref)
    copy = await card_of(slack, INCIDENT, ref)
    assert "incidents.example.com/42" in str(card["blocks"])
    assert copy["ts"] != card["ts"]
    assert "add details" in str(card["blocks"]).lower()
    await eventually(lambda: any("S0APPROVERS" in t for t in thread_texts(slack, card)))


async def test_emergency_without_text_explains_the_one_line_form(
    driver: SlackDriver,
) -> None:
    answer = await driver.slash_command("U0ALICE", "/change", "emergency", channel=INCIDENT)
    assert answer.status == 200 and "one line" in answer.text


async def test_an_emergency_declared_where_the_bot_cannot_post_links_the_requester_to_it(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    await driver.slash_command("U0ALICE", "/change", "emergency Flush the CDN", channel="G0SECRET")
    notice = await eventually(
        lambda: [m for m in slack.dms("U0ALICE") if "can't post" in m.get("text", "")]
    )
    assert "/invite @changebot" in notice[0]["text"]
