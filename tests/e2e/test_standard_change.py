"""A Standard change: a pre-approved catalog procedure stands for review, test and approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot import ids
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import BotProcess, audit_trail, eventually
from tests.e2e.steps import (
    buttons,
    cards,
    click,
    input_ids,
    latest,
    open_request_form,
    pick_classification,
    request_change,
    settled,
    step_with_form,
    thread_texts,
)
from workflows.stages import Action


def standard_request(title: str, **overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=2)
    values: dict[str, Any] = {
        ids.TITLE: title,
        ids.PROCEDURE: "restart-service",
        ids.SERVICES: "checkout-api",
        ids.WINDOW_START: start,
        ids.WINDOW_END: start + timedelta(minutes=30),
    }
    values.update(overrides)
    return values


async def test_picking_standard_turns_the_form_into_a_catalog_picker(
    slack: SlackStandIn, driver: SlackDriver
) -> None:
    normal = await open_request_form(driver, slack, "U0ALICE")
    assert {ids.SCOPE, ids.RISK, ids.IMPACT} <= set(input_ids(normal))
    assert ids.PROCEDURE not in input_ids(normal)

    standard = await pick_classification(driver, slack, "U0ALICE", "standard")

    shown = input_ids(standard)
    assert standard["id"] == normal["id"]  # the same modal, redrawn in place
    assert ids.PROCEDURE in shown
    assert not {ids.SCOPE, ids.RISK, ids.IMPACT, ids.ROLLBACK_PLAN} & set(shown)
    procedure = next(b for b in standard["blocks"] if b.get("block_id") == ids.PROCEDURE)
    offered = [o["value"] for o in procedure["element"]["options"]]
    assert offered == ["restart-service"]
    await driver.close_modal("U0ALICE")


async def test_a_standard_change_is_pre_approved_and_goes_straight_to_deploy(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    title = "Restart checkout-api pods"
    card = await request_change(
        driver, slack, classification="standard", values=standard_request(title)
    )

    shown = str(card["blocks"])
    assert title in shown and "Pre-approved" in shown
    assert "Rolling restart of a stateless service" in shown
    assert "▶️ Deploy and verify" in shown
    assert buttons(card) == ["start_deployment", "edit", "cancel"]

    await settled(bot, slack)
    procedure_lines = [t for t in thread_texts(slack, card) if "pre-approved procedure" in t]
    assert len(procedure_lines) == 3
    for satisfied in ("the review", "the testing", "the approval"):
        assert any(line.endswith(f"satisfies {satisfied}.") for line in procedure_lines)
    assert all("Rolling restart of a stateless service (v3)" in line for line in procedure_lines)
    # Nobody is asked to approve what the catalog pre-approved.
    assert not any("S0APPROVERS" in t for t in thread_texts(slack, card))
    notice = await eventually(
        lambda: [m for m in slack.dms("U0ALICE") if "pre-approved" in m.get("text", "")]
    )
    assert title in notice[0]["text"]

    await click(driver, slack, "U0ALICE", card, Action.START_DEPLOYMENT)
    await eventually(lambda: buttons(latest(slack, card)) == ["record_outcome"])
    await step_with_form(
        driver, slack, "U0ALICE", card, Action.RECORD_OUTCOME, {ids.OUTCOME: "successful"}
    )
    closed = await eventually(lambda: not buttons(latest(slack, card)) and latest(slack, card))
    assert "🏁 Closed" in str(closed["blocks"])
    ref = str(card["text"]).split(" ")[0]
    assert [action for _, _, action in audit_trail(bot, ref)] == [
        "requested",
        "submitted",
        "satisfied_by_procedure",
        "satisfied_by_procedure",
        "satisfied_by_procedure",
        "deployment_started",
        "outcome_recorded",
        "closed",
    ]


async def test_a_standard_change_naming_a_procedure_outside_the_catalog_cannot_be_submitted(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    before = (len(cards(slack)), len(audit_trail(bot)))
    await open_request_form(driver, slack, "U0ALICE")
    await pick_classification(driver, slack, "U0ALICE", "standard")
    # The picker offers only the catalog; a form opened before the catalog changed, or a
    # forged one, can still name something else.
    outside = {"selected_option": {"text": {"type": "plain_text", "text": "Drop"}, "value": "drop"}}

    answer = await driver.submit_modal(
        "U0ALICE", standard_request("Drop the orders table", **{ids.PROCEDURE: outside})
    )

    assert answer.status == 200, answer.text
    assert answer.body["response_action"] == "errors"
    assert list(answer.body["errors"]) == [ids.PROCEDURE]
    assert "not a pre-approved procedure" in answer.body["errors"][ids.PROCEDURE]
    assert "choose Normal" in answer.body["errors"][ids.PROCEDURE]
    assert slack.open_modal("U0ALICE") is not None  # the form stays open to be corrected
    assert (len(cards(slack)), len(audit_trail(bot))) == before
    await driver.close_modal("U0ALICE")
