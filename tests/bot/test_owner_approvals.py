"""Approvers by service, the whole bot in this process (tests/bot/in_process.py): a Normal
change on a service with owners waits for its owners besides the approvers, the card shows
each rule met or not, only the owners are asked for their rule, and the gate follows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import Session

from bot import ids
from bot.cli import main
from bot.views import card as card_view
from storage import tokens
from tests.bot.in_process import InProcess, in_process
from tests.bot.test_risk_questionnaire import RISKY, answered
from tests.e2e.harness import eventually, policy_toml, workspace
from tests.e2e.steps import (
    buttons,
    click,
    latest,
    request_change,
    review_and_test,
    thread_texts,
)
from tests.unit.builders import QUESTIONNAIRE, a_change
from workflows.model import Classification, Stage
from workflows.policy import load_policy, parse_policy
from workflows.stages import Action
from workflows.standing import standing
from workflows.tokens import Scope

BILLING_OWNERS = "S0BILLING"
FRAN = "U0FRAN"  # owns billing-*, approves nothing else

OWNERS = f"""
[[owners]]
services = ["billing-*"]
groups = ["{BILLING_OWNERS}"]
"""


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    people = workspace()  # the owners' group exists before start-up checks the policy's groups
    people.add_user(FRAN, "fran")
    people.set_usergroup(BILLING_OWNERS, [FRAN])
    async with in_process(sqlite_template, tmp_path, policy_toml(extra=OWNERS), people) as served:
        yield served


def approvals_of(message: dict[str, Any]) -> list[str]:
    """The card's approval lines: the heading, then one per rule."""
    for block in message.get("blocks") or []:
        shown = (block.get("text") or {}).get("text", "")
        if shown.startswith("*Approvals:*"):
            return str(shown).split("\n")
    return []


async def ask_gate(bot: InProcess, ref: str) -> dict[str, Any]:
    """What the deploy gate answers a pipeline about deploying billing-db under `ref`."""
    with Session(bot.bot.services.engine) as session:
        _, secret = tokens.create(
            session, "ci", frozenset({Scope.GATE}), "U0CAROL", bot.clock.now()
        )
    url = bot.driver.http.url.replace("/slack/events", "/api/v1/gate")
    question = {"change": ref, "service": "billing-db", "environment": "production"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=question, headers={"Authorization": f"Bearer {secret}"}) as answer,
    ):
        body: dict[str, Any] = await answer.json()
    with Session(bot.bot.services.engine) as session:
        tokens.revoke(session, "ci", "U0CAROL", bot.clock.now())
    return body


async def test_a_change_on_an_owned_service_waits_for_its_owner_as_well(bot: InProcess) -> None:
    card = await request_change(
        bot.driver, bot.slack, **{ids.SERVICES: "billing-db", ids.TITLE: "Add an index"}
    )
    await review_and_test(bot.driver, bot.slack, card)

    # Reaching Approve, the approvers are asked, and the billing owners for billing-db alone.
    asked = await eventually(
        lambda: [t for t in thread_texts(bot.slack, card) if "waiting for your approval" in t]
    )
    lines = asked[-1].split("\n")
    assert "<!subteam^S0APPROVERS> <@U0CAROL> this change is waiting for your approval." in lines
    assert (
        "<!subteam^S0BILLING> this change is waiting for your approval as Owners of billing-* "
        "(billing-db)." in lines
    )

    # Someone in no rule may not approve it.
    told = len(bot.slack.ephemerals("U0ERIN"))
    await click(bot.driver, bot.slack, "U0ERIN", card, Action.APPROVE)
    refusal = await eventually(lambda: bot.slack.ephemerals("U0ERIN")[told:])
    assert "owners of its services" in refusal[0]["text"]

    # The owner finds it waiting for her, though she approves nothing else.
    assert "CHG-0001" in await list_text(bot, FRAN, "awaiting-me")

    # A general approver alone does not authorise it.
    await click(bot.driver, bot.slack, "U0CAROL", card, Action.APPROVE)
    shown = await eventually(lambda: _approvals_showing(bot, card, "1 of 2 rules met"))
    assert shown[1].startswith("✅ Approvers: 1 of 1 — <@U0CAROL>")
    assert shown[2] == "⏳ Owners of billing-* (for billing-db): 0 of 1"
    assert "start_deployment" not in buttons(latest(bot.slack, card))
    assert "authorised" not in bot.actions("CHG-0001")
    replied = await eventually(
        lambda: [t for t in thread_texts(bot.slack, card) if t.startswith("✅ <@U0CAROL>")]
    )
    assert replied == ["✅ <@U0CAROL> approved (for Approvers; 1 of 2 rules met)."]
    assert "1 of 2 approval rules met" in await list_text(bot, "U0ERIN", "open")
    waiting = await ask_gate(bot, "CHG-0001")
    assert waiting["status"] == "awaiting"
    assert (
        "it waits for approvals: 1 from Owners of billing-* (billing-db)" in waiting["reasons"][0]
    )

    # The owner's approval completes it.
    await click(bot.driver, bot.slack, FRAN, card, Action.APPROVE)
    shown = await eventually(lambda: _approvals_showing(bot, card, "2 of 2 rules met"))
    assert shown[2] == "✅ Owners of billing-* (for billing-db): 1 of 1 — <@U0FRAN>"
    assert "start_deployment" in buttons(latest(bot.slack, card))
    assert bot.trail("CHG-0001")[-1].entry.details["approvers"] == ["U0CAROL", FRAN]
    bot.clock.current = max(bot.clock.current, _window_start(bot))
    allowed = await ask_gate(bot, "CHG-0001")
    assert allowed["status"] == "allowed", allowed


async def test_a_rule_only_the_requester_could_meet_says_so_on_the_card(bot: InProcess) -> None:
    bot.slack.workspace.set_usergroup(BILLING_OWNERS, ["U0ALICE"])  # the requester alone
    card = await request_change(
        bot.driver, bot.slack, **{ids.SERVICES: "billing-db", ids.TITLE: "Drop a column"}
    )
    await review_and_test(bot.driver, bot.slack, card)

    await click(bot.driver, bot.slack, "U0CAROL", card, Action.APPROVE)
    shown = await eventually(lambda: _approvals_showing(bot, card, "1 of 2 rules met"))

    assert shown[2].startswith("⚠️ Owners of billing-* (for billing-db): 0 of 1 · *cannot be met:*")
    assert "the requester and the implementer never count" in shown[2]


async def list_text(bot: InProcess, user: str, which: str) -> str:
    reply = await bot.driver.slash_command(user, "/change", f"list {which}")
    assert reply.status == 200, reply.text
    return str(reply.body)


def test_policy_check_lists_the_owners_and_the_high_risk_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.toml"
    high_risk = 'emergency = 1\nhigh_risk_groups = ["S0SECURITY"]'
    policy.write_text(policy_toml(extra=OWNERS).replace("emergency = 1", high_risk), "utf-8")

    code = main(["policy", "check", str(policy)])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "  high-risk approvers: S0SECURITY (1 more approval for high risk)" in out
    assert "    Owners of billing-*: S0BILLING (1 approval); services billing-*" in out


def test_an_owners_entry_naming_nobody_stops_start_up_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml(extra=OWNERS.replace('["S0BILLING"]', "[]")), "utf-8")

    code = main(["policy", "check", str(policy)])

    err = capsys.readouterr().err
    assert code != 0
    assert f"Bad change policy in {policy}: owners.0.groups: name at least one" in err


def _approvals_showing(bot: InProcess, card: dict[str, Any], words: str) -> list[str] | None:
    shown = approvals_of(latest(bot.slack, card))
    return shown if shown and words in shown[0] else None


def _window_start(bot: InProcess) -> Any:
    with bot.bot.services.read() as session:
        from storage.repositories import SqlChanges

        change = SqlChanges(session).get(1)
    assert change.details.window is not None
    return change.details.window.start


# -- the card alone ----------------------------------------------------------------------------


def test_a_card_under_a_policy_naming_no_approver_reads_as_it_always_did() -> None:
    policy = load_policy()  # the default names no approver yet
    change = a_change(Classification.NORMAL, Stage.APPROVE)

    shown = card_view.card_message(standing(change, policy, members={}), policy)

    assert approvals_of(shown) == ["*Approvals:* 0 of 1"]


def test_a_card_whose_one_rule_names_only_its_requester_says_it_cannot_be_met() -> None:
    policy = parse_policy(policy_toml().replace('users = ["U0CAROL"]', 'users = ["UALICE"]'))
    change = a_change(Classification.NORMAL, Stage.APPROVE)  # requested by UALICE

    shown = card_view.card_message(
        standing(change, policy, members={"S0APPROVERS": frozenset({"UIVAN"})}), policy
    )

    heading, rule = approvals_of(shown)
    assert heading == "*Approvals:* 0 of 1 rules met"
    assert rule.startswith("⚠️ Approvers: 0 of 1 · *cannot be met:*")


async def test_answers_scoring_high_need_the_high_risk_approvals_and_the_owners_approval(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Issue 22's first done-when: the questionnaire decides the risk, the risk decides the
    general rule's count, the service decides the owners' rule, and the card shows each."""
    people = workspace()
    people.add_user(FRAN, "fran")
    people.set_usergroup(BILLING_OWNERS, [FRAN])
    policy = policy_toml(extra=QUESTIONNAIRE + OWNERS)
    async with in_process(sqlite_template, tmp_path, policy, people) as bot:
        values = answered(RISKY, **{ids.SERVICES: "billing-db", ids.TITLE: "Rewrite invoices"})
        card = await request_change(bot.driver, bot.slack, values=values)
        # Before anyone reviews it, its answers alone make it High: two approvals, and the
        # owners' one (a Medium change would need one: test_risk_questionnaire).
        unmet = ["⏳ Approvers: 0 of 2", "⏳ Owners of billing-* (for billing-db): 0 of 1"]
        assert approvals_of(latest(bot.slack, card)) == ["*Approvals:* 0 of 2 rules met", *unmet]
        await review_and_test(bot.driver, bot.slack, card, risk="high")
        shown = await eventually(lambda: _approvals_showing(bot, card, "0 of 2 rules met"))
        assert shown[1:] == unmet

        # Both of the high-risk approvals are not enough: the owners' rule is unmet.
        await click(bot.driver, bot.slack, "U0CAROL", card, Action.APPROVE)
        await eventually(lambda: "1 of 2 —" in str(approvals_of(latest(bot.slack, card))))
        await click(bot.driver, bot.slack, "U0DAVE", card, Action.APPROVE)
        shown = await eventually(lambda: _approvals_showing(bot, card, "1 of 2 rules met"))
        assert shown[1].startswith("✅ Approvers: 2 of 2")
        assert shown[2] == "⏳ Owners of billing-* (for billing-db): 0 of 1"
        assert "authorised" not in bot.actions("CHG-0001")

        # The owner's approval meets the last rule.
        await click(bot.driver, bot.slack, FRAN, card, Action.APPROVE)
        shown = await eventually(lambda: _approvals_showing(bot, card, "2 of 2 rules met"))
        assert shown[2] == "✅ Owners of billing-* (for billing-db): 1 of 1 — <@U0FRAN>"
        assert bot.actions("CHG-0001")[-1] == "authorised"
