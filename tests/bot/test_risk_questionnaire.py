"""The risk questionnaire in Slack: the request form asks the policy's questions of a Normal
change, the card shows the score and the answers that drove it, the reviewer cannot lower the
risk below it, and a change whose answers score High needs the high-risk approvals. The whole
bot in this process (tests/bot/in_process.py), the forms submitted as Slack submits them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import ids
from bot.cli import main
from bot.views import forms
from tests.bot.blockkit import parse_view, slack_state
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually, policy_toml
from tests.e2e.steps import (
    buttons,
    click,
    input_ids,
    latest,
    normal_request,
    open_form,
    open_request_form,
    pick_classification,
    request_change,
    review,
    step_with_form,
    thread_texts,
)
from tests.unit.builders import QUESTIONNAIRE
from workflows.errors import ValidationFailed
from workflows.model import Classification
from workflows.policy import parse_policy
from workflows.stages import Action
from workflows.validation import validate_details

POLICY = parse_policy(policy_toml(extra=QUESTIONNAIRE))
QUESTIONS = [ids.ANSWER_PREFIX + q for q in ("customers", "reversible", "data", "staging")]
#: 3 + 2 + 3 - 1 = 7: High.
RISKY = {
    ids.ANSWER_PREFIX + "customers": "Yes",
    ids.ANSWER_PREFIX + "reversible": "No",
    ids.ANSWER_PREFIX + "data": "Rewrites data",
    ids.ANSWER_PREFIX + "staging": "Yes",
}
#: 3 + 0 + 0 + 1.5 = 4.5: Medium.
MIDDLING = {
    ids.ANSWER_PREFIX + "customers": "Yes",
    ids.ANSWER_PREFIX + "reversible": "Yes",
    ids.ANSWER_PREFIX + "data": "No",
    ids.ANSWER_PREFIX + "staging": "No",
}


def answered(answers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """The usual Normal request, answering the questionnaire instead of picking a risk."""
    values = normal_request(**overrides)
    del values[ids.RISK]
    return {**values, **answers}


def text_of(message: dict[str, Any]) -> str:
    return str(message.get("blocks"))


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path, policy_toml(extra=QUESTIONNAIRE)) as served:
        yield served


# -- the forms, as views ----------------------------------------------------------------------


def test_a_normal_request_asks_the_questions_in_place_of_a_risk_to_pick() -> None:
    view = forms.request_modal(POLICY, classification=Classification.NORMAL)
    parse_view(view)
    blocks = input_ids(view)
    assert ids.RISK not in blocks
    start = blocks.index(QUESTIONS[0])
    assert blocks[start : start + 4] == QUESTIONS
    assert blocks[start + 4] == ids.IMPACT
    question = next(b for b in view["blocks"] if b.get("block_id") == QUESTIONS[1])
    assert question["label"]["text"] == "Can it be undone within minutes?"
    assert question["hint"]["text"].startswith("A redeploy of the previous version counts")
    assert not question.get("optional")  # Slack asks for an answer before it submits
    assert [o["value"] for o in question["element"]["options"]] == ["Yes", "No"]
    assert "worked out from your answers" in str(view["blocks"])


@pytest.mark.parametrize("classification", [Classification.STANDARD, Classification.EMERGENCY])
def test_standard_and_emergency_requests_are_not_asked(classification: Classification) -> None:
    blocks = input_ids(forms.request_modal(POLICY, classification=classification))
    assert not set(QUESTIONS) & set(blocks)
    assert (ids.RISK in blocks) is (classification is Classification.EMERGENCY)


def test_a_policy_without_questions_asks_for_the_risk_as_before() -> None:
    blocks = input_ids(forms.request_modal(parse_policy(policy_toml())))
    assert ids.RISK in blocks
    assert not [b for b in blocks if b.startswith(ids.ANSWER_PREFIX)]


def test_the_answers_are_read_back_and_the_edit_form_is_prefilled_with_them() -> None:
    view = forms.request_modal(POLICY)
    typed = {
        k: v for k, v in answered(RISKY).items() if k not in (ids.WINDOW_START, ids.WINDOW_END)
    }
    details = forms.parse_request_leniently(slack_state(view, **typed), POLICY)
    assert [(a.question, a.choice) for a in details.answers] == [
        ("customers", "Yes"),
        ("reversible", "No"),
        ("data", "Rewrites data"),
        ("staging", "Yes"),
    ]
    edit = forms.request_modal(POLICY, callback_id=ids.EDIT_MODAL, details=details)
    again = forms.parse_request_leniently(slack_state(edit), POLICY)
    assert again.answers == details.answers


def test_every_unanswered_question_is_refused_on_its_own_input() -> None:
    view = forms.request_modal(POLICY)
    details = forms.parse_request(slack_state(view, **{QUESTIONS[0]: "Yes"}), POLICY)
    with pytest.raises(ValidationFailed) as refused:
        validate_details(details, POLICY, None)
    errors = forms.errors_for(refused.value, view=view)
    assert set(QUESTIONS[1:]) <= set(errors)
    assert errors[QUESTIONS[2]] == (
        "Answer “Does it touch stored data?”: the change's risk is worked out from it."
    )
    assert QUESTIONS[0] not in errors


# -- in Slack ----------------------------------------------------------------------------------


async def test_picking_normal_again_brings_the_questions_back(bot: InProcess) -> None:
    await open_request_form(bot.driver, bot.slack, "U0ALICE")
    assert set(QUESTIONS) <= set(input_ids(bot.slack.open_modal("U0ALICE")))
    emergency = await pick_classification(bot.driver, bot.slack, "U0ALICE", "emergency")
    assert not set(QUESTIONS) & set(input_ids(emergency))
    normal = await pick_classification(bot.driver, bot.slack, "U0ALICE", "normal")
    assert set(QUESTIONS) <= set(input_ids(normal))


async def test_the_card_shows_the_score_the_level_and_the_answers_that_drove_it(
    bot: InProcess,
) -> None:
    card = await request_change(bot.driver, bot.slack, values=answered(RISKY))
    shown = text_of(card)
    assert "*Risk / impact*\\nHigh / Medium" in shown
    assert (
        "📋 *Risk questionnaire:* score 7, High — driven by "
        "Will customers notice if it goes wrong? _Yes_ (+3) · "
        "Does it touch stored data? _Rewrites data_ (+3) · "
        "Can it be undone within minutes? _No_ (+2)"
    ) in shown
    assert "staging" not in shown  # an answer that lowered the total drove nothing
    requested = bot.trail("CHG-0001")[0].entry.details
    assert requested["risk"] == "high" and requested["score"] == 7
    assert requested["answers"]["data"] == {"answer": "Rewrites data", "weight": 3}


async def test_an_answer_the_policy_does_not_offer_is_refused_on_its_question(
    bot: InProcess,
) -> None:
    """A form opened before the policy changed its answers: nothing is stored."""
    await open_request_form(bot.driver, bot.slack, "U0ALICE")
    stale = {"selected_option": {"value": "Maybe", "text": {"type": "plain_text", "text": "?"}}}
    values = answered(RISKY)
    values[ids.ANSWER_PREFIX + "customers"] = stale
    answer = await bot.driver.submit_modal("U0ALICE", values)

    assert answer.status == 200, answer.text
    assert answer.body["response_action"] == "errors", answer.body
    assert answer.body["errors"] == {
        ids.ANSWER_PREFIX + "customers": "'Maybe' is not one of the answers offered (Yes, No)."
    }
    assert bot.actions("CHG-0001") == []


async def test_the_reviewer_cannot_lower_the_risk_below_the_questionnaires_result(
    bot: InProcess,
) -> None:
    card = await request_change(bot.driver, bot.slack, values=answered(MIDDLING))
    form = await open_form(bot.driver, bot.slack, "U0BOB", card, Action.RECORD_REVIEW)
    risk = next(b for b in form["blocks"] if b.get("block_id") == ids.REVIEW_RISK)
    assert risk["element"]["initial_option"]["value"] == "medium"
    assert risk["hint"]["text"].startswith("The risk questionnaire scored it 4.5: medium.")

    refused = await bot.driver.submit_modal(
        "U0BOB", {ids.ASSESSMENT: "Looks harmless.", ids.REVIEW_RISK: "low"}
    )
    assert refused.body["response_action"] == "errors", refused.body
    assert refused.body["errors"] == {
        ids.REVIEW_RISK: "A review may confirm or raise the risk, not lower it below the "
        "questionnaire's result (Medium, a score of 4.5); reject the change if its answers "
        "are wrong."
    }
    assert bot.actions("CHG-0001") == ["requested", "submitted"]

    raised = await bot.driver.submit_modal(
        "U0BOB", {ids.ASSESSMENT: "Touches checkout.", ids.REVIEW_RISK: "high"}
    )
    assert raised.status == 200 and not raised.body, raised.text
    shown = await eventually(lambda: "raised in review" in text_of(latest(bot.slack, card)))
    assert shown
    assert "*Risk / impact*\\nHigh (raised in review from Medium)" in text_of(
        latest(bot.slack, card)
    )
    reviewed = bot.trail("CHG-0001")[-1].entry.details
    assert reviewed["questionnaire"]["level"] == "medium"


async def test_a_change_whose_answers_score_high_needs_the_high_risk_approvals(
    bot: InProcess,
) -> None:
    card = await request_change(bot.driver, bot.slack, values=answered(RISKY))
    # The reviewer confirms what the questionnaire found; it is never offered lower.
    await review(bot.driver, bot.slack, card, "high", "Careful with the backfill.")
    await step_with_form(
        bot.driver, bot.slack, "U0ALICE", card, Action.ADD_TEST_EVIDENCE, {ids.EVIDENCE: "Ok."}
    )
    await eventually(lambda: "approve" in buttons(latest(bot.slack, card)))
    assert "*Approvals:* 0 of 2" in text_of(latest(bot.slack, card))

    await click(bot.driver, bot.slack, "U0CAROL", card, Action.APPROVE)
    after_one = await eventually(
        lambda: (
            "*Approvals:* 1 of 2" in text_of(latest(bot.slack, card)) and latest(bot.slack, card)
        )
    )
    assert "start_deployment" not in buttons(after_one)

    await click(bot.driver, bot.slack, "U0DAVE", card, Action.APPROVE)
    await eventually(lambda: "start_deployment" in buttons(latest(bot.slack, card)))
    assert bot.actions("CHG-0001")[-3:] == ["approved", "approved", "authorised"]


async def test_editing_the_answers_rescores_the_change_on_its_card_and_thread(
    bot: InProcess,
) -> None:
    card = await request_change(bot.driver, bot.slack, values=answered(MIDDLING))
    assert "score 4.5, Medium" in text_of(card)

    form = await open_form(bot.driver, bot.slack, "U0ALICE", card, Action.EDIT)
    picked = next(b for b in form["blocks"] if b.get("block_id") == QUESTIONS[0])
    assert picked["element"]["initial_option"]["value"] == "Yes"  # the answers given, kept
    answer = await bot.driver.submit_modal("U0ALICE", {ids.ANSWER_PREFIX + "data": "Rewrites data"})
    assert answer.status == 200 and not answer.body, answer.text

    await eventually(lambda: "score 7.5, High" in text_of(latest(bot.slack, card)))
    assert "*Risk / impact*\\nHigh / Medium" in text_of(latest(bot.slack, card))
    said = await eventually(lambda: [t for t in thread_texts(bot.slack, card) if "edited" in t])
    assert "edited the risk, risk questionnaire answers." in said[0]
    assert "The risk questionnaire now scores it 7.5: High." in said[0]
    edited = bot.trail("CHG-0001")[-1].entry
    assert edited.action == "edited"
    assert edited.details["answers"]["data"] == {"answer": "Rewrites data", "weight": 3}


def test_policy_check_summarises_the_questionnaire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml(extra=QUESTIONNAIRE), encoding="utf-8")
    assert main(["policy", "check", str(policy)]) == 0
    out = capsys.readouterr().out
    assert (
        "  risk: 4 questions asked of Normal changes (customers, reversible, data, staging); "
        "totals -1 to 9.5: low below 3, medium from 3, high from 6"
    ) in out


def test_policy_check_says_when_the_requester_picks_the_risk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml(), encoding="utf-8")
    assert main(["policy", "check", str(policy)]) == 0
    assert "  risk: picked by the requester (no questionnaire)" in capsys.readouterr().out
