"""What people do in Slack, as steps the end-to-end tests share."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bot import ids
from standin import SlackDriver, SlackStandIn, payloads
from standin.blocks import find_element
from tests.e2e.harness import BotProcess, eventually, everything_shown
from workflows.stages import Action

CHANGES = "C0CHANGES"


#: Each request's window starts two hours after the last one's, so that the changes a test
#: requests one after another do not overlap (an overlap turns the form into a warning) unless
#: the test gives them the same window on purpose.
_SLOTS = itertools.count()


def normal_request(**overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=1 + 2 * next(_SLOTS))
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


#: A post-change review of an emergency rollback, with the documentation it owed.
EMERGENCY_REVIEW = {
    ids.WHAT_WAS_DONE: "Rolled checkout back to v41.",
    ids.WHY_IT_COULD_NOT_WAIT: "Payments were failing for every customer.",
    ids.ROOT_CAUSE: "https://incidents.example.com/42",
    ids.CLASSIFICATION_JUSTIFIED: "yes",
    ids.FOLLOW_UPS: "Add a canary for payment errors.",
    ids.CONTRIBUTED_TO_INCIDENT: "no",
    ids.OWED_PREFIX + "description": "v42 broke card payments; rolled back.",
    ids.OWED_PREFIX + "rollback": "Redeploy v42 once fixed.",
    ids.OWED_PREFIX + "test_evidence": "Checkout smoke test green after rollback.",
}


def cards(slack: SlackStandIn, channel: str = CHANGES) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("blocks")]


async def request_change(
    driver: SlackDriver, slack: SlackStandIn, user: str = "U0ALICE", **overrides: Any
) -> dict[str, Any]:
    """`user` types /change, fills the form and submits; returns the card once posted."""
    before = len(cards(slack))
    await open_request_form(driver, slack, user)
    classification = overrides.pop("classification", None)
    if classification:
        await pick_classification(driver, slack, user, classification)
    answer = await driver.submit_modal(
        user, overrides.pop("values", None) or normal_request(**overrides)
    )
    assert answer.status == 200 and not (answer.body or {}).get("errors"), answer.text
    return (await eventually(lambda: cards(slack)[before:]))[0]


async def open_request_form(
    driver: SlackDriver, slack: SlackStandIn, user: str, channel: str = CHANGES
) -> dict[str, Any]:
    """`user` types /change in `channel`; returns the request form once it is open."""
    shown_before = (slack.open_modal(user) or {}).get("id")
    reply = await driver.slash_command(user, "/change", channel=channel)
    assert reply.status == 200, reply.text
    return await eventually(lambda: _opened_since(slack, user, shown_before))


async def pick_classification(
    driver: SlackDriver, slack: SlackStandIn, user: str, classification: str
) -> dict[str, Any]:
    """`user` picks a classification in the open request form; returns the redrawn form."""
    await driver.click(user, slack.open_modal(user), ids.CLASSIFICATION, classification)
    return await eventually(
        lambda: (
            chosen(slack.open_modal(user), ids.CLASSIFICATION) == classification
            and slack.open_modal(user)
        )
    )


def chosen(view: dict[str, Any] | None, block_id: str) -> str | None:
    """The option a select in `view` shows as chosen."""
    for block in (view or {}).get("blocks") or []:
        if block.get("block_id") == block_id:
            return ((block.get("element") or {}).get("initial_option") or {}).get("value")
    return None


def input_ids(view: dict[str, Any] | None) -> list[str]:
    """The block_ids of a view's inputs, in order."""
    return [b["block_id"] for b in (view or {}).get("blocks") or [] if b.get("type") == "input"]


def _opened_since(slack: SlackStandIn, user: str, before: str | None) -> dict[str, Any] | None:
    shown = slack.open_modal(user)
    return shown if shown is not None and shown.get("id") != before else None


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
    await open_form(driver, slack, user, card, action)
    return await driver.submit_modal(user, values)


async def open_form(
    driver: SlackDriver, slack: SlackStandIn, user: str, card: dict[str, Any], action: Action
) -> dict[str, Any]:
    """Click a button that opens a form; returns the form once it is open."""
    shown_before = (slack.open_modal(user) or {}).get("id")
    reply = await click(driver, slack, user, card, action)
    assert reply.status == 200, reply.text
    return await eventually(lambda: _opened_since(slack, user, shown_before))


def thread_texts(slack: SlackStandIn, card: dict[str, Any]) -> list[str]:
    return [m.get("text", "") for m in slack.thread(CHANGES, card["ts"])[1:]]


async def stage_shown(slack: SlackStandIn, card: dict[str, Any], words: str) -> dict[str, Any]:
    return await eventually(
        lambda: words in str(latest(slack, card).get("blocks")) and latest(slack, card)
    )


async def settled(bot: BotProcess, slack: SlackStandIn) -> None:
    """Wait until the bot has shown in Slack everything that happened so far."""
    await eventually(lambda: everything_shown(bot))
    await quiet(slack, 0.1)


async def quiet(slack: SlackStandIn, moment: float = 0.2) -> None:
    """Wait until the bot has called Slack's Web API for nothing for a moment: whatever it
    was going to post or update (the publisher works in the background) is out by then."""
    while True:
        seen = len(slack.calls)
        await asyncio.sleep(moment)
        if len(slack.calls) == seen:
            return


async def click_on_copy(
    driver: SlackDriver, slack: SlackStandIn, user: str, copy: dict[str, Any], action: Action
) -> Any:
    """Click a button on `copy`, a card as it was once shown, not as it is now.

    `driver.click` always sends the freshest copy of a message, as Slack's client does once
    it has caught up; a person whose client still shows the old card sends the old one.
    """
    found = find_element(copy["blocks"], ids.card_action_id(action))
    assert found is not None, f"the copy has no {action} button"
    block, element = found
    pressed = {
        "type": "button",
        "action_id": element["action_id"],
        "block_id": block["block_id"],
        "text": element["text"],
        "value": element["value"],
        "action_ts": payloads.action_ts(),
    }
    payload = payloads.block_actions_in_message(
        driver.workspace,
        token=driver.token,
        user=user,
        trigger_id=slack.issue_trigger(user),
        action=pressed,
        channel=CHANGES,
        message={k: v for k, v in copy.items() if k != "channel"},
        ephemeral=False,
        response_url=slack.issue_response_url(CHANGES, user, copy["ts"]),
        state={},
    )
    return await driver.post_raw(urlencode({"payload": json.dumps(payload)}).encode())


async def review(
    driver: SlackDriver,
    slack: SlackStandIn,
    card: dict[str, Any],
    risk: str = "low",
    assessment: str = "Fine.",
) -> None:
    """Bob reviews the change, assessing `risk`: it waits for test evidence."""
    await step_with_form(
        driver,
        slack,
        "U0BOB",
        card,
        Action.RECORD_REVIEW,
        {ids.ASSESSMENT: assessment, ids.REVIEW_RISK: risk},
    )
    await eventually(lambda: "add_test_evidence" in buttons(latest(slack, card)))


async def review_and_test(
    driver: SlackDriver, slack: SlackStandIn, card: dict[str, Any], risk: str = "low"
) -> None:
    """Bob reviews the change (assessing `risk`), Alice adds test evidence: it waits for its
    approvals."""
    await review(driver, slack, card, risk)
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.ADD_TEST_EVIDENCE, {ids.EVIDENCE: "Ok."}
    )
    await eventually(lambda: "approve" in buttons(latest(slack, card)))


async def approve_deploy_and_succeed(
    driver: SlackDriver, slack: SlackStandIn, card: dict[str, Any]
) -> None:
    """An emergency's way out: Dave approves, Alice deploys, and it went well."""
    await driver.click("U0DAVE", latest(slack, card), ids.card_action_id(Action.APPROVE))
    await eventually(lambda: "start_deployment" in buttons(latest(slack, card)))
    await driver.click("U0ALICE", latest(slack, card), ids.card_action_id(Action.START_DEPLOYMENT))
    await eventually(lambda: "record_outcome" in buttons(latest(slack, card)))
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.RECORD_OUTCOME, {ids.OUTCOME: "successful"}
    )
