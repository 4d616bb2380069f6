"""What people do in Slack, as steps the end-to-end tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import eventually
from workflows.stages import Action

CHANGES = "C0CHANGES"


def normal_request(**overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=1)
    values: dict[str, Any] = {
        ids.TITLE: "Upgrade Postgres to 16.4",
        ids.SCOPE: "database",
        ids.DESCRIPTION: "Minor version upgrade of the primary and replicas.",
        ids.SERVICES: "billing-db, reporting",
        ids.RISK: "low",
        ids.IMPACT: "medium",
        ids.ROLLBACK_PLAN: "Fail over to the untouched replica.",
        ids.WINDOW_START: start,
        ids.WINDOW_END: start + timedelta(hours=1),
    }
    values.update(overrides)
    return values


def cards(slack: SlackStandIn, channel: str = CHANGES) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("blocks")]


async def request_change(
    driver: SlackDriver, slack: SlackStandIn, user: str = "U0ALICE", **overrides: Any
) -> dict[str, Any]:
    """`user` types /change, fills the form and submits; returns the card once posted."""
    before = len(cards(slack))
    reply = await driver.slash_command(user, "/change", channel=CHANGES)
    assert reply.status == 200, reply.text
    await eventually(lambda: driver.open_modal_for(user))
    classification = overrides.pop("classification", None)
    if classification:
        await driver.click(user, driver.open_modal_for(user), ids.CLASSIFICATION, classification)
        await eventually(lambda: _shows_class(driver, user, classification))
    answer = await driver.submit_modal(user, overrides.pop("values", None) or normal_request(**overrides))
    assert answer.status == 200 and not (answer.body or {}).get("errors"), answer.text
    return (await eventually(lambda: cards(slack)[before:]))[0]


def _shows_class(driver: SlackDriver, user: str, classification: str) -> bool:
    view = driver.open_modal_for(user) or {}
    return classification in str(view.get("blocks"))


def latest(slack: SlackStandIn, card: dict[str, Any]) -> dict[str, Any]:
    message = slack.message(CHANGES, card["ts"])
    assert message is not None
    return message


def buttons(message: dict[str, Any]) -> list[str]:
    found = []
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            action_id = element.get("action_id", "")
            if action_id.startswith(ids.CARD_ACTION_PREFIX):
                found.append(action_id.removeprefix(ids.CARD_ACTION_PREFIX))
    return found


async def click(
    driver: SlackDriver, slack: SlackStandIn, user: str, card: dict[str, Any], action: Action
) -> Any:
    return await driver.click(user, latest(slack, card), ids.card_action_id(action))


async def step_with_form(
    driver: SlackDriver,
    slack: SlackStandIn,
    user: str,
    card: dict[str, Any],
    action: Action,
    values: dict[str, Any],
) -> Any:
    """Click a button that opens a form, fill it and submit it."""
    modals_before = len(slack.modals(user))
    reply = await click(driver, slack, user, card, action)
    assert reply.status == 200, reply.text
    await eventually(lambda: len(slack.modals(user)) > modals_before)
    return await driver.submit_modal(user, values)


def thread_texts(slack: SlackStandIn, card: dict[str, Any]) -> list[str]:
    return [m.get("text", "") for m in slack.thread(CHANGES, card["ts"])[1:]]


async def stage_shown(slack: SlackStandIn, card: dict[str, Any], words: str) -> dict[str, Any]:
    return await eventually(lambda: words in str(latest(slack, card).get("blocks")) and latest(slack, card))
