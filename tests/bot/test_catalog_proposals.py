"""The Standard change catalog grows from Slack: `/change propose-standard`, the proposal's
thread, its decision by the policy owner (never by the proposer, nor by anyone else), and the
procedure offered in the next request form, its version on the change it pre-approves.
The whole bot in this process (tests/bot/in_process.py), the forms submitted as Slack does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from bot import ids
from bot.catalog import thread_of
from bot.listeners.catalog import post_unposted
from bot.views.card import card
from bot.views.proposals import Proposing, parse_draft, proposal_message
from standin.inputs import InputError
from storage.repositories import SqlChanges
from storage.uow import SqlUnitOfWork
from tests.bot.blockkit import (
    HOSTILE,
    HOSTILE_ESCAPED,
    all_mrkdwn,
    assert_safe_mrkdwn,
    parse_message,
)
from tests.bot.changes import a_policy, every_change
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually, policy_toml
from tests.e2e.steps import (
    CHANGES,
    cards,
    latest,
    open_request_form,
    pick_classification,
    quiet,
)
from tests.unit.builders import NOW, standard_details
from workflows import followup, process
from workflows.catalog import Draft, Proposal, ProposalKind, ProposalStage, open_proposal_actions
from workflows.errors import ValidationFailed
from workflows.model import Actor, Change, Outcome
from workflows.stages import Action

ALICE, CAROL, DAVE = "U0ALICE", "U0CAROL", "U0DAVE"


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path) as served:
        yield served


def closed_successfully(bot: InProcess, title: str = "") -> Change:
    """A Standard change on the record, deployed and closed with a successful outcome."""
    services = bot.bot.services
    run: dict[str, Any] = {"clock": bot.clock, "policy": services.policy}
    alice = Actor(ALICE)
    change = process.request_change(
        SqlUnitOfWork(services.engine),
        **run,
        actor=alice,
        details=standard_details(services=("cdn",), **({"title": title} if title else {})),
    ).change
    process.start_deployment(
        SqlUnitOfWork(services.engine), **run, number=change.number, actor=alice
    )
    return followup.record_outcome(
        SqlUnitOfWork(services.engine),
        **run,
        number=change.number,
        actor=alice,
        outcome=Outcome.SUCCESSFUL,
    )


def proposal_values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        ids.PROCEDURE_ID: "flush-cdn",
        ids.PROCEDURE_NAME: "Flush the CDN cache",
        ids.SCOPE: "code",
        ids.RUNBOOK: "https://runbooks.example.com/flush-cdn",
        ids.SERVICES: "cdn",
        ids.WHY_ROUTINE: "Done weekly for two years; the cache refills in minutes.",
        ids.EVIDENCE: ["1"],
    }
    values.update(overrides)
    return values


async def open_proposal_form(bot: InProcess, user: str = ALICE, text: str = "") -> dict[str, Any]:
    before = (bot.slack.open_modal(user) or {}).get("id")
    words = f"{ids.PROPOSE_VERB} {text}".strip()
    reply = await bot.driver.slash_command(user, "/change", words, channel=CHANGES)
    assert reply.status == 200, reply.text
    form = await eventually(
        lambda: (
            (shown := bot.slack.open_modal(user)) is not None
            and shown.get("id") != before
            and shown.get("callback_id") == ids.PROPOSE_MODAL
            and shown
        )
    )
    if ids.EVIDENCE in str(form["blocks"]):
        await bot.driver.suggest(user, ids.EVIDENCE)  # the person opens the past-changes menu
    return form


async def propose(bot: InProcess, **overrides: Any) -> dict[str, Any]:
    """Alice proposes the CDN flush; returns the proposal's card once posted."""
    await open_proposal_form(bot)
    answer = await bot.driver.submit_modal(ALICE, proposal_values(**overrides))
    assert answer.status == 200 and not (answer.body or {}).get("errors"), answer.text
    return await eventually(lambda: proposal_card(bot))


def proposal_card(bot: InProcess) -> dict[str, Any] | None:
    return next((m for m in cards(bot.slack) if "STD-0001" in str(m.get("blocks"))), None)


async def click(bot: InProcess, user: str, card: dict[str, Any], action: Action) -> None:
    reply = await bot.driver.click(user, latest(bot.slack, card), ids.proposal_action_id(action))
    assert reply.status == 200, reply.text


def told(bot: InProcess, user: str, words: str) -> bool:
    return any(words in m.get("text", "") for m in bot.slack.ephemerals(user))


def procedure_options(view: dict[str, Any]) -> list[str]:
    for block in view.get("blocks") or []:
        if block.get("block_id") == ids.PROCEDURE:
            return [o["text"]["text"] for o in block["element"]["options"]]
    return []


async def test_a_procedure_approved_in_slack_is_offered_in_the_next_form_and_its_version_recorded(
    bot: InProcess,
) -> None:
    closed_successfully(bot)
    card = await propose(bot)
    assert "Proposal to add the Standard procedure *flush-cdn*" in str(card["blocks"])
    assert {
        ids.proposal_action_id(a) for a in (Action.APPROVE, Action.REJECT, Action.CANCEL)
    } <= set(str(card["blocks"]).split("'")), "the card offers approve, reject and withdraw"

    # The proposer may not approve their own proposal; a change approver may not either.
    await click(bot, ALICE, card, Action.APPROVE)
    await eventually(lambda: told(bot, ALICE, "You proposed STD-0001: someone else must decide"))
    await click(bot, DAVE, card, Action.APPROVE)
    await eventually(lambda: told(bot, DAVE, "Only the policy owner or the catalog approvers"))
    assert bot.actions("STD-0001") == ["proposed"]

    # The policy owner approves: the card says so, and the thread tells the proposer.
    await click(bot, CAROL, card, Action.APPROVE)
    decided = await eventually(
        lambda: (
            "in the Standard change catalog as v1" in str(latest(bot.slack, card)["blocks"])
            and latest(bot.slack, card)
        )
    )
    assert ids.PROPOSAL_ACTION_PREFIX not in str(decided["blocks"]), "no buttons once decided"
    replies = await eventually(lambda: bot.slack.thread(CHANGES, card["ts"])[1:])
    assert "<@U0CAROL> approved STD-0001" in replies[0]["text"]
    assert bot.actions("STD-0001") == ["proposed", "approved"]

    # The next request form offers it.
    await open_request_form(bot.driver, bot.slack, ALICE)
    form = await pick_classification(bot.driver, bot.slack, ALICE, "standard")
    assert "Flush the CDN cache (v1)" in procedure_options(form)

    # A Standard change following it records its version, on the card too.
    before = len(cards(bot.slack))
    answer = await bot.driver.submit_modal(
        ALICE,
        {
            ids.TITLE: "Flush the CDN after the logo change",
            ids.PROCEDURE: "flush-cdn",
            ids.SERVICES: "cdn",
            ids.WINDOW_START: bot.clock.now().replace(year=2027),
            ids.WINDOW_END: bot.clock.now().replace(year=2027, hour=10),
        },
    )
    assert answer.status == 200 and not (answer.body or {}).get("errors"), answer.text
    change_card = await eventually(
        lambda: next(
            (m for m in cards(bot.slack)[before:] if "CHG-0002" in str(m.get("blocks"))), None
        )
    )
    await eventually(
        lambda: "*Pre-approved:* Flush the CDN cache (v1)" in str(latest(bot.slack, change_card))
    )
    with Session(bot.bot.services.engine) as session:
        assert SqlChanges(session).get(2).details.procedure_version == "1"
    satisfied = [
        e.entry for e in bot.trail("CHG-0002") if e.entry.action == "satisfied_by_procedure"
    ]
    assert {e.details["version"] for e in satisfied} == {"1"}


async def test_a_bad_proposal_is_answered_on_its_fields_and_nothing_is_saved(
    bot: InProcess,
) -> None:
    closed_successfully(bot)
    await open_proposal_form(bot)

    answer = await bot.driver.submit_modal(
        ALICE,
        proposal_values(
            **{
                ids.PROCEDURE_ID: "restart-service",
                ids.RUNBOOK: "ftp://runbooks.example.com/flush-cdn",
            }
        ),
    )

    assert answer.body["response_action"] == "errors", answer.text
    errors = answer.body["errors"]
    assert "is in the catalog already (Rolling restart" in errors[ids.PROCEDURE_ID]
    assert "https://" in errors[ids.RUNBOOK]
    assert bot.actions("STD-0001") == []


async def test_a_member_of_the_catalog_approvers_group_approves(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Dave is in S0APPROVERS, which the policy names as catalog approvers only (and Erin is
    not): the bot must ask Slack who is in it although no change approver is named by it."""
    grouped = policy_toml(extra='\n[catalog_approvers]\ngroups = ["S0APPROVERS"]\n').replace(
        'groups = ["S0APPROVERS"]\n\n[approvals]', "groups = []\n\n[approvals]"
    )
    assert "groups = []\n\n[approvals]" in grouped
    async with in_process(sqlite_template, tmp_path, policy=grouped) as bot:
        closed_successfully(bot)
        card = await propose(bot)
        await click(bot, "U0ERIN", card, Action.APPROVE)
        await eventually(lambda: told(bot, "U0ERIN", "Only the policy owner or the catalog"))

        await click(bot, DAVE, card, Action.APPROVE)

        await eventually(lambda: bot.actions("STD-0001") == ["proposed", "approved"])
        assert bot.trail("STD-0001")[-1].entry.actor == DAVE


async def test_the_owner_rejects_a_proposal_with_a_reason_in_its_thread(bot: InProcess) -> None:
    closed_successfully(bot)
    card = await propose(bot)

    await click(bot, CAROL, card, Action.REJECT)
    await eventually(
        lambda: (bot.slack.open_modal(CAROL) or {}).get("callback_id") == ids.PROPOSAL_REJECT_MODAL
    )
    answer = await bot.driver.submit_modal(CAROL, {ids.REASON: "Needs a canary first."})

    assert answer.status == 200 and not (answer.body or {}).get("errors"), answer.text
    replies = await eventually(lambda: bot.slack.thread(CHANGES, card["ts"])[1:])
    assert "rejected STD-0001: “Needs a canary first.”" in replies[0]["text"]
    assert bot.actions("STD-0001") == ["proposed", "rejected"]


async def test_a_revision_is_proposed_from_the_procedure_as_it_is(bot: InProcess) -> None:
    form = await open_proposal_form(bot, text="revise restart-service")

    assert form["title"]["text"] == "Revise a procedure"
    initial = {
        b["block_id"]: b["element"].get("initial_value")
        for b in form["blocks"]
        if b.get("type") == "input"
    }
    assert initial[ids.RUNBOOK] == "https://runbooks.example.com/rolling-restart"
    assert ids.PROCEDURE_ID not in initial  # the procedure is the one named


async def test_proposing_to_revise_a_procedure_not_in_the_catalog_is_refused(
    bot: InProcess,
) -> None:
    reply = await bot.driver.slash_command(
        ALICE, "/change", f"{ids.PROPOSE_VERB} retire no-such-thing", channel=CHANGES
    )

    assert "no-such-thing is not in the Standard change catalog" in reply.body["text"]


# -- the cards, drawn alone ---------------------------------------------------------------


def _standard_authorised() -> tuple[Any, Change]:
    _, desk, change = next(c for c in every_change() if c[0] == "standard authorised")
    return desk.policy, change


def test_a_standard_card_shows_the_version_it_followed_when_the_catalog_moved_on() -> None:
    policy, change = _standard_authorised()
    assert change.details.procedure_version == "3"
    (file_procedure,) = policy.catalog
    revised = policy.with_catalog((file_procedure.model_copy(update={"version": "4"}),))

    mrkdwn = all_mrkdwn(card(change, revised)["blocks"])

    assert "*Pre-approved:* Rolling restart of a stateless service (v3) · " in mrkdwn
    assert "the catalog has v4 now" in mrkdwn


def test_a_standard_card_of_a_retired_procedure_still_names_its_version() -> None:
    policy, change = _standard_authorised()

    mrkdwn = all_mrkdwn(card(change, policy.with_catalog(()))["blocks"])

    assert (
        "*Pre-approved procedure:* restart-service (v3) (no longer in the Standard change catalog)"
    ) in mrkdwn


def test_a_standard_change_recorded_before_versions_shows_the_catalogs() -> None:
    policy, change = _standard_authorised()
    old = replace(change, details=change.details.with_changes(procedure_version=""))

    mrkdwn = all_mrkdwn(card(old, policy)["blocks"])

    assert "*Pre-approved:* Rolling restart of a stateless service (v3) · " in mrkdwn
    assert "the catalog has" not in mrkdwn


@pytest.mark.parametrize("stage", list(ProposalStage))
def test_every_proposal_card_is_valid_block_kit_and_shows_what_people_wrote_literally(
    stage: ProposalStage,
) -> None:
    policy = a_policy()
    draft = Draft(
        ProposalKind.ADD,
        "flush-cdn",
        name=HOSTILE,
        scope="code",
        runbook="https://example.com/r",
        services=("cdn",),
        why=HOSTILE,
        evidence=(1, 2),
    )
    proposal = Proposal(1, draft, "UALICE", NOW, stage, decided_by="UOWNER", reason=HOSTILE)

    message = proposal_message(proposal, policy)

    parse_message(message)
    mrkdwn = all_mrkdwn(message["blocks"])
    assert HOSTILE_ESCAPED in mrkdwn
    assert_safe_mrkdwn(mrkdwn)
    shown = [
        e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    expected = [ids.proposal_action_id(a) for a in open_proposal_actions(proposal, policy)]
    assert shown == expected


async def test_a_policy_that_names_nobody_to_decide_takes_no_proposals(
    sqlite_template: Path, tmp_path: Path
) -> None:
    ownerless = policy_toml().replace(
        'owner = "U0CAROL"\nlast_reviewed', 'owner = ""\nlast_reviewed'
    )
    async with in_process(sqlite_template, tmp_path, policy=ownerless) as bot:
        reply = await bot.driver.slash_command(ALICE, "/change", ids.PROPOSE_VERB, channel=CHANGES)

    assert "names no owner (policy.owner) and no catalog_approvers" in reply.body["text"]
    assert bot.slack.open_modal(ALICE) is None


def test_a_past_change_the_form_did_not_offer_is_refused_on_its_field() -> None:
    values = {ids.EVIDENCE: {ids.EVIDENCE: {"selected_options": [{"value": "CHG-x"}]}}}

    with pytest.raises(ValidationFailed) as refused:
        parse_draft(values, Proposing(ProposalKind.ADD))

    assert refused.value.field == "evidence"


async def test_a_card_slack_refused_is_posted_by_the_next_sweep_once(bot: InProcess) -> None:
    closed_successfully(bot)
    await open_proposal_form(bot)
    await quiet(bot.slack, 0.5)  # the closed change's own messages are out first
    # Only the proposal's card meets the fault: the publisher's posts (the closed change's
    # replies, should one come late) all carry metadata.
    bot.slack.fail_next("chat.postMessage", "not_in_channel", where={"metadata": ""})
    answer = await bot.driver.submit_modal(ALICE, proposal_values())
    assert answer.status == 200 and not (answer.body or {}).get("errors"), answer.text
    await eventually(
        lambda: any(
            "I will post it again shortly" in m.get("text", "") for m in bot.slack.dms(ALICE)
        )
    )
    assert proposal_card(bot) is None

    services = bot.bot.services
    assert await post_unposted(services) == 0  # within its grace: the form's own post goes first
    bot.clock.advance(minutes=1)
    assert await post_unposted(services) == 1
    posted = await eventually(lambda: proposal_card(bot))
    assert await services.query(thread_of, 1) == (posted["channel"], posted["ts"])
    assert await post_unposted(services) == 0  # posted: never twice
    assert len([m for m in cards(bot.slack) if "STD-0001" in str(m.get("blocks"))]) == 1


def offered(options: list[dict[str, Any]]) -> list[str]:
    return [o["text"]["text"].split(" · ")[0] for o in options]


async def test_the_past_changes_menu_finds_any_change_closed_successfully_by_its_words(
    bot: InProcess,
) -> None:
    """The menu offers the latest hundred at first; typing finds an older one by words of its
    title (in any case, in any order) or by its number, never one not closed successfully."""
    old = closed_successfully(bot, "Flush the CDN cache for the EU edge")
    for n in range(100):
        closed_successfully(bot, f"Routine restart {n}")
    open_change = process.request_change(
        SqlUnitOfWork(bot.bot.services.engine),
        clock=bot.clock,
        policy=bot.bot.services.policy,
        actor=Actor(ALICE),
        details=standard_details(title="Flush the CDN cache again"),
    ).change
    await open_proposal_form(bot)

    latest = await bot.driver.suggest(ALICE, ids.EVIDENCE)
    assert len(latest) == 100 and old.ref not in offered(latest)
    assert offered(latest)[0] == "CHG-0101"  # the latest outcome first

    assert await bot.driver.suggest(ALICE, ids.EVIDENCE, "100% _") == []
    assert open_change.ref not in offered(await bot.driver.suggest(ALICE, ids.EVIDENCE, "again"))
    assert offered(await bot.driver.suggest(ALICE, ids.EVIDENCE, old.ref)) == [old.ref]
    assert offered(await bot.driver.suggest(ALICE, ids.EVIDENCE, "flush")) == [old.ref]
    by_words = await bot.driver.suggest(ALICE, ids.EVIDENCE, "eu cdn")
    assert offered(by_words) == [old.ref]

    answer = await bot.driver.submit_modal(
        ALICE, proposal_values(**{ids.EVIDENCE: [str(old.number)]})
    )
    assert answer.status == 200 and not (answer.body or {}).get("errors"), answer.text
    card = await eventually(lambda: proposal_card(bot))
    assert old.ref in str(card["blocks"])


async def test_a_past_change_the_menu_never_offered_cannot_be_chosen(bot: InProcess) -> None:
    closed_successfully(bot, "Flush the CDN cache")
    await open_proposal_form(bot)
    await bot.driver.suggest(ALICE, ids.EVIDENCE, "nothing like it")

    with pytest.raises(InputError, match="offers"):
        await bot.driver.submit_modal(ALICE, proposal_values(**{ids.EVIDENCE: ["1"]}))
