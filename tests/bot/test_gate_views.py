"""The gate and the pipelines in Slack: the card shows what each pipeline was answered and what
it deployed, the thread tells the requester a pipeline waits on them, and a deployment outside
the gate is told to the policy owner."""

from __future__ import annotations

from bot.effects import Effect, effects_for
from bot.views.card import card_blocks
from bot.views.common import to_dicts
from tests.bot.blockkit import HOSTILE, HOSTILE_ESCAPED, all_mrkdwn, assert_safe_mrkdwn
from tests.bot.changes import SCENARIOS, Desk, a_desk, entries, normal_details
from workflows import deployments, gate
from workflows.deployments import Report
from workflows.gate import Asked, Question, Target
from workflows.model import Change, Stage
from workflows.standing import standing


def shown(desk: Desk, change: Change) -> str:
    blocks = card_blocks(standing(desk.stored(change), desk.policy), desk.policy)
    return all_mrkdwn(to_dicts(blocks))


def effects(desk: Desk, change: Change, action: str) -> list[Effect]:
    entry = [e for e in entries(desk) if e.action == action][-1]
    return effects_for(entry, desk.stored(change), desk.policy)


def scenario(name: str) -> tuple[Desk, Change]:
    desk = a_desk()
    return desk, SCENARIOS[name](desk)


def test_the_card_shows_a_pipeline_held_by_the_gate() -> None:
    desk, change = scenario("normal held by the gate")

    assert (
        "⏳ *Gate holding* pipeline `ci-prod`: api to production (acme/api@47efb71) waits for "
        "this change" in shown(desk, change)
    )
    assert "<https://ci.example.com/runs/7|run>" in shown(desk, change)


def test_the_thread_tells_the_requester_a_pipeline_waits_on_their_change() -> None:
    desk, change = scenario("normal held by the gate")

    (reply,) = effects(desk, change, "gate_decided")

    assert reply.to == ""  # in the thread
    assert reply.text.startswith("⏳ pipeline `ci-prod` is waiting to deploy api to production")
    assert reply.text.endswith("<@UALICE>, your change is what it waits for.")
    assert "it waits for approval: it has 0 of the 1 approval it needs." in reply.text


def test_asking_again_and_hearing_the_same_shows_nothing() -> None:
    desk, change = scenario("normal held by the gate")
    question = Question(change.number, Target("api", "production"), Asked("ci-prod"))
    gate.ask(desk.uow, desk.clock, desk.policy, question)

    assert effects(desk, change, "gate_decided") == []


def test_the_card_shows_each_deployment_a_pipeline_reported_and_how_it_ended() -> None:
    desk, change = scenario("normal rolled back by a pipeline")

    card = shown(desk, change)

    assert "🚀 *Deployment* run-api by pipeline `ci` for octocat: api to production" in card
    assert "run-worker" in card and "· rolled back" in card and "· successful" in card
    assert "*Outcome:* Rolled back — api to production (run-api): successful; worker" in card
    assert "🟢 *Gate allowed* pipeline `ci-prod` to deploy worker to production" in card
    assert "without an allowed gate decision" not in card


def test_a_deployment_outside_the_gate_is_loud_on_the_card_in_the_thread_and_to_the_owner() -> None:
    desk, change = scenario("normal deployed outside the gate")

    thread, owner = effects(desk, change, "ungated_deployment")

    assert "🚨 *without an allowed gate decision*" in shown(desk, change)
    assert thread.to == "" and thread.text.startswith("🚨 *Deployed outside the gate:*")
    assert "<@UOWNER> has been told." in thread.text
    assert owner.to == "UOWNER"
    assert owner.text.startswith(
        "🚨 pipeline `ci` deployed api to production (hotfix-1) under *CHG-0001*"
    )
    assert "The gate would have answered awaiting" in owner.text


def test_githubs_own_decisions_are_shown_as_githubs() -> None:
    desk, change = scenario("normal cancelled, GitHub refused")

    (reply,) = effects(desk, change, "gate_decided")

    assert reply.text.startswith("⛔ The gate stopped GitHub deploying api to production")
    assert "⛔ *Gate prevented* GitHub from deploying" in shown(desk, change)


def test_what_a_pipeline_writes_is_shown_literally() -> None:
    desk = a_desk()
    change = desk.normal_change_in(Stage.APPROVE, normal_details(services=(HOSTILE,)))
    question = Question(
        change.number, Target(HOSTILE, "production"), Asked("ci", triggered_by=HOSTILE)
    )
    gate.ask(desk.uow, desk.clock, desk.policy, question)
    report = Report("run-1", Target(HOSTILE, "production"), HOSTILE)
    deployments.report_started(desk.uow, desk.clock, desk.policy, change.number, "ci", report)

    card = shown(desk, change)
    replies = [
        e.text for a in ("gate_decided", "ungated_deployment") for e in effects(desk, change, a)
    ]

    for text in (card, *replies):
        assert_safe_mrkdwn(text)
    assert HOSTILE_ESCAPED in card


def test_a_busy_card_shows_the_newest_lines_and_counts_the_rest() -> None:
    desk = a_desk()
    change = desk.normal_change_in(Stage.APPROVE)
    for n in range(20):
        question = Question(change.number, Target("api", "production"), Asked(f"ci-{n:02d}"))
        gate.ask(desk.uow, desk.clock, desk.policy, question)

    card = shown(desk, change)

    assert "_… and 9 earlier; the audit trail has them all._" in card
    assert "pipeline `ci-19`" in card and "pipeline `ci-08`" not in card


def test_no_card_line_about_the_gate_before_a_pipeline_asks() -> None:
    desk = a_desk()
    change = desk.normal_change_in(Stage.APPROVE)

    assert "Gate" not in shown(desk, change)
