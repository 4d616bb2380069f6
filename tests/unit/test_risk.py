"""The risk questionnaire: the policy's questions and bands, the score and level of a set of
answers, and a Normal change whose risk is its answers' result."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from tests.unit.builders import (
    ANNA,
    ARTHUR,
    POLICY_TOML,
    QUESTIONNAIRE,
    RISKY,
    ROUTINE,
    Desk,
    a_policy,
    answered,
    emergency_details,
    normal_details,
    nothing_written,
    standard_details,
)
from tests.unit.fakes import FakeClock, FakeUnitOfWork
from workflows.errors import PolicyError, TransitionNotAllowed, ValidationFailed
from workflows.evidence import steps
from workflows.model import Answer, Change, Classification, Level, Links, Stage
from workflows.policy import Policy, load_policy, parse_policy
from workflows.risk import assess, drivers, score

WITH_QUESTIONS = parse_policy(POLICY_TOML + QUESTIONNAIRE, "test policy")
DEFAULT_POLICY = resources.files("workflows").joinpath("default_policy.toml")


@pytest.fixture
def asking(uow: FakeUnitOfWork, clock: FakeClock) -> Desk:
    """The use cases under the test policy with the questionnaire."""
    return Desk(uow, clock, WITH_QUESTIONS)


# -- scoring --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "level"),
    [
        (ROUTINE, -1, Level.LOW),
        # Untested in staging and not undoable: 1.5 + 2.
        (answered(customers="No", reversible="No", data="No", staging="No"), 3.5, Level.MEDIUM),
        # Exactly on a band's start: medium starts at 3.
        (answered(customers="Yes", reversible="Yes", data="No", staging="No"), 4.5, Level.MEDIUM),
        (answered(customers="Yes", reversible="Yes", data="No", staging="Yes"), 2, Level.LOW),
        (
            answered(customers="No", reversible="No", data="Schema only", staging="No"),
            4.5,
            Level.MEDIUM,
        ),
        (RISKY, 7, Level.HIGH),
        (
            answered(customers="Yes", reversible="No", data="Schema only", staging="Yes"),
            5,
            Level.MEDIUM,
        ),
        (
            answered(customers="Yes", reversible="No", data="Schema only", staging="No"),
            7.5,
            Level.HIGH,
        ),
    ],
)
def test_the_answers_weights_add_up_to_a_total_whose_band_is_the_level(
    answers: tuple[Answer, ...], total: float, level: Level
) -> None:
    assessment = assess(WITH_QUESTIONS.risk, answers)
    assert assessment.score == total
    assert assessment.level is level


def test_a_total_on_a_bands_start_is_in_that_band() -> None:
    risk = WITH_QUESTIONS.risk
    assert [risk.level_for(t) for t in (-1, 2.99, 3, 5.99, 6, 100)] == [
        Level.LOW,
        Level.LOW,
        Level.MEDIUM,
        Level.MEDIUM,
        Level.HIGH,
        Level.HIGH,
    ]


def test_the_answers_are_recorded_with_their_wording_and_weight_in_the_policys_order() -> None:
    shuffled = tuple(reversed(RISKY))
    assessment = assess(WITH_QUESTIONS.risk, shuffled)
    assert assessment.answers == (
        Answer("customers", "Yes", 3, "Will customers notice if it goes wrong?"),
        Answer("reversible", "No", 2, "Can it be undone within minutes?"),
        Answer("data", "Rewrites data", 3, "Does it touch stored data?"),
        Answer("staging", "Yes", -1, "Was it tested in staging?"),
    )


def test_the_answers_that_raised_the_total_drove_it_heaviest_first() -> None:
    assessment = assess(WITH_QUESTIONS.risk, RISKY)
    assert [(a.question, a.weight) for a in assessment.drivers] == [
        ("customers", 3),
        ("data", 3),
        ("reversible", 2),
    ]
    assert drivers(assess(WITH_QUESTIONS.risk, ROUTINE).answers) == ()
    assert score(()) == 0


def test_every_unanswered_or_unknown_answer_is_named_at_once() -> None:
    with pytest.raises(ValidationFailed) as refused:
        assess(WITH_QUESTIONS.risk, answered(customers="Maybe", data="No"))
    assert [field for field, _ in refused.value.problems] == [
        "answer.customers",
        "answer.reversible",
        "answer.staging",
    ]
    problems = dict(refused.value.problems)
    assert problems["answer.customers"] == "'Maybe' is not one of the answers offered (Yes, No)."
    assert problems["answer.reversible"] == (
        "answer “Can it be undone within minutes?”: the change's risk is worked out from it."
    )


def test_answers_to_questions_the_policy_no_longer_asks_are_dropped() -> None:
    assessment = assess(WITH_QUESTIONS.risk, (*ROUTINE, Answer("weekend", "Yes")))
    assert [a.question for a in assessment.answers] == [
        "customers",
        "reversible",
        "data",
        "staging",
    ]


# -- the policy -----------------------------------------------------------------------------


def test_the_default_policy_asks_no_questions() -> None:
    policy = load_policy()
    assert policy.risk.question == ()
    assert not any(policy.risk.asks(c) for c in Classification)


def test_only_a_normal_change_is_asked() -> None:
    asked = [c for c in Classification if WITH_QUESTIONS.risk.asks(c)]
    assert asked == [Classification.NORMAL]


def test_the_commented_example_in_the_default_policy_is_a_valid_questionnaire() -> None:
    """The example a policy owner copies must load as it is, once uncommented."""
    lines = DEFAULT_POLICY.read_text("utf-8").splitlines()
    start = lines.index("# [risk]")
    example = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        example.append(line.removeprefix("#").removeprefix(" "))
    policy = parse_policy(POLICY_TOML + "\n".join(example), "the default policy's example")
    assert len(policy.risk.question) >= 3
    assert policy.risk.level_for(policy.risk.lowest_total()) is Level.LOW
    assert policy.risk.level_for(policy.risk.highest_total()) is Level.HIGH


def with_risk(edit: tuple[str, str] | None = None, *, extra: str = "") -> str:
    text = QUESTIONNAIRE
    if edit is not None:
        old, new = edit
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return POLICY_TOML + text + extra


BAD_QUESTIONNAIRES = {
    "bands that overlap": (
        with_risk(("medium = { from = 3,", "medium = { from = 2,")),
        "risk.medium.from",
        "medium overlaps low: low runs up to (not including) 3 and medium starts at 2; "
        "start medium at 3",
    ),
    "bands that leave a gap": (
        with_risk(("high = { from = 6 }", "high = { from = 7 }")),
        "risk.high.from",
        "leaves a gap: medium ends below 6 and high starts at 7, so a total from 6 up to 7 "
        "has no level; start high at 6",
    ),
    "a band that ends before it starts": (
        with_risk(("medium = { from = 3, below = 6 }", "medium = { from = 3, below = 3 }")),
        "risk.medium",
        "from (3) must be less than below (3)",
    ),
    "a band missing": (
        with_risk(("high = { from = 6 }\n", "")),
        "risk.high",
        "a questionnaire needs a band for each level",
    ),
    "a band missing its bound": (
        with_risk(("medium = { from = 3, below = 6 }", "medium = { from = 3 }")),
        "risk.medium.below",
        "this key is required: it says where medium ends (high starts there)",
    ),
    "lowest totals outside every band": (
        with_risk(("low = { below = 3 }", "low = { from = 0, below = 3 }")),
        "risk.low.from",
        "the answers can total -1, which no band covers (low starts at 0)",
    ),
    "highest totals outside every band": (
        with_risk(("high = { from = 6 }", "high = { from = 6, below = 9 }")),
        "risk.high.below",
        "the answers can total 9.5, which no band covers",
    ),
    "a weight that is not a number": (
        with_risk(('{ label = "Yes", weight = 3 }', '{ label = "Yes", weight = "high" }')),
        "risk.question.0.answers.0.weight",
        "'high' is not a number: write a weight such as 3, 0 or -1.5",
    ),
    "a weight of true": (
        with_risk(('{ label = "Yes", weight = 3 }', '{ label = "Yes", weight = true }')),
        "risk.question.0.answers.0.weight",
        "True is not a number",
    ),
    "a weight that is infinite": (
        with_risk(('{ label = "Yes", weight = 3 }', '{ label = "Yes", weight = inf }')),
        "risk.question.0.answers.0.weight",
        "is not a number a total can be made of",
    ),
    "a question without answers": (
        with_risk(
            (
                'answers = [{ label = "Yes", weight = 3 }, { label = "No", weight = 0 }]',
                "answers = []",
            )
        ),
        "risk.question[0].answers",
        "'customers' needs at least two answers to choose from",
    ),
    "a question with no answers key": (
        with_risk(
            ('answers = [{ label = "Yes", weight = 3 }, { label = "No", weight = 0 }]\n', "")
        ),
        "risk.question[0].answers",
        "needs at least two answers",
    ),
    "a duplicate question id": (
        with_risk(('id = "staging"', 'id = "customers"')),
        "risk.question[3].id",
        "'customers' appears twice; give each question its own id",
    ),
    "a duplicate answer": (
        with_risk(('{ label = "Schema only", weight = 1 }', '{ label = "No", weight = 1 }')),
        "risk.question[2].answers[1].label",
        "'No' appears twice in 'data'",
    ),
    "an answer without a weight": (
        with_risk(('{ label = "Yes", weight = 3 }', '{ label = "Yes" }')),
        "risk.question.0.answers.0.weight",
        "this key is required",
    ),
    "bands without questions": (
        POLICY_TOML + "\n[risk]\nlow = { below = 3 }\n",
        "risk.question",
        "the bands need questions to score",
    ),
    "a misspelt key": (
        with_risk(('hint = "A redeploy', 'hints = "A redeploy')),
        "risk.question.1.hints",
        "unknown key",
    ),
}


@pytest.mark.parametrize(
    ("text", "key", "problem"), BAD_QUESTIONNAIRES.values(), ids=BAD_QUESTIONNAIRES.keys()
)
def test_a_questionnaire_that_cannot_score_every_change_stops_start_up(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    error = refused.value
    assert (error.source, error.key) == (str(path), key)
    assert problem in error.problem
    assert str(error) == f"Bad change policy in {path}: {key}: {error.problem}"


def test_decimal_weights_and_bounds_are_numbers_too() -> None:
    policy = parse_policy(
        with_risk(
            ("medium = { from = 3, below = 6 }", "medium = { from = 3, below = 5.5 }")
        ).replace("high = { from = 6 }", "high = { from = 5.5 }"),
        "test policy",
    )
    assert policy.risk.level_for(5.5) is Level.HIGH


# -- a change that answers it ---------------------------------------------------------------


def test_the_answers_decide_the_risk_of_a_normal_change(asking: Desk) -> None:
    # What the request says of the risk does not count: the answers do.
    change = asking.request(normal_details(risk=Level.LOW, answers=RISKY))
    stored = asking.stored(change)
    assert stored.details.risk is Level.HIGH
    assert stored.risk is Level.HIGH
    assert stored.details.answers[0].asked == "Will customers notice if it goes wrong?"


def test_a_normal_change_without_its_answers_is_refused_and_nothing_is_written(
    asking: Desk,
) -> None:
    with nothing_written(asking.uow), pytest.raises(ValidationFailed) as refused:
        asking.request(normal_details(answers=answered(customers="Yes")))
    assert [f for f, _ in refused.value.problems] == [
        "answer.reversible",
        "answer.data",
        "answer.staging",
    ]


@pytest.mark.parametrize("details", [standard_details, emergency_details])
def test_standard_and_emergency_changes_are_not_asked(asking: Desk, details: type) -> None:
    change = asking.request(details(risk=Level.MEDIUM))
    assert asking.stored(change).details.answers == ()
    assert asking.stored(change).details.risk is Level.MEDIUM


def test_the_request_records_the_answers_and_score_for_the_auditor(asking: Desk) -> None:
    change = asking.request(normal_details(answers=RISKY))
    requested = asking.last_entry(change, "requested").entry.details
    assert requested["risk"] == "high"
    assert requested["score"] == 7
    assert requested["answers"] == {
        "customers": {"answer": "Yes", "weight": 3},
        "reversible": {"answer": "No", "weight": 2},
        "data": {"answer": "Rewrites data", "weight": 3},
        "staging": {"answer": "Yes", "weight": -1},
    }


def test_a_policy_without_questions_records_no_answers(desk: Desk) -> None:
    change = desk.request(normal_details(risk=Level.MEDIUM))
    requested = desk.last_entry(change, "requested").entry.details
    assert "answers" not in requested and "score" not in requested
    assert desk.stored(change).details.risk is Level.MEDIUM


def test_the_reviewer_may_raise_the_risk_but_not_below_the_questionnaires_result(
    asking: Desk,
) -> None:
    medium = answered(customers="Yes", reversible="Yes", data="No", staging="No")
    change = asking.request(normal_details(answers=medium))
    with nothing_written(asking.uow), pytest.raises(ValidationFailed) as refused:
        asking.review(change, risk=Level.LOW)
    assert refused.value.field == "risk"
    assert "not lower it below the questionnaire's result (Medium, a score of 4.5)" in str(
        refused.value
    )
    reviewed = asking.review(change, risk=Level.HIGH)
    assert reviewed.risk is Level.HIGH
    entry = asking.last_entry(change, "reviewed").entry.details
    assert entry["risk"] == "high" and entry["risk_raised"] is True
    assert entry["questionnaire"]["level"] == "medium"
    assert entry["questionnaire"]["score"] == 4.5


def test_a_change_whose_answers_score_high_needs_the_high_risk_approvals(asking: Desk) -> None:
    change = asking.normal_change_in(Stage.APPROVE, normal_details(answers=RISKY))
    assert asking.approve(change, by=ANNA).stage is Stage.APPROVE  # 1 of 2
    assert asking.approve(change, by=ARTHUR).stage is Stage.DEPLOY


def test_a_change_whose_answers_score_low_needs_the_normal_approvals(asking: Desk) -> None:
    change = asking.normal_change_in(Stage.APPROVE, normal_details(answers=ROUTINE))
    assert asking.approve(change, by=ANNA).stage is Stage.DEPLOY


def test_editing_the_answers_rescores_withdraws_approvals_and_is_recorded(asking: Desk) -> None:
    change = asking.normal_change_in(Stage.APPROVE, normal_details(answers=ROUTINE))
    asking.approve(change, by=ANNA)  # authorised: Low needs one
    edited = asking.edit(change, answers=RISKY)
    assert edited.details.risk is Level.HIGH
    # The reviewer said Low before; the new answers are the floor now.
    assert edited.risk is Level.HIGH
    assert edited.approvers() == ()
    assert edited.stage is Stage.APPROVE
    entry = asking.last_entry(change, "edited").entry.details
    assert entry["fields"] == ["risk", "answers"]
    assert entry["risk"] == "high" and entry["score"] == 7
    assert entry["answers"]["customers"] == {"answer": "Yes", "weight": 3}
    assert "approvals_withdrawn" in asking.actions(change)
    # High now needs two: one more approval is not enough.
    assert asking.approve(change, by=ANNA).stage is Stage.APPROVE
    with pytest.raises(TransitionNotAllowed):
        asking.start_deployment(change)
    assert asking.approve(change, by=ARTHUR).stage is Stage.DEPLOY


def test_first_answers_given_after_approval_withdraw_it_when_they_raise_the_risk(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    # Approved before the policy asked its questions, then answered: the answers are what
    # the approvers weigh now, and these make it High (two approvals, not one).
    change = Desk(uow, clock, a_policy()).normal_change_in(Stage.DEPLOY)
    asking = Desk(uow, clock, WITH_QUESTIONS)

    edited = asking.edit(change, answers=RISKY)

    assert edited.risk is Level.HIGH
    assert edited.approvers() == ()
    assert edited.stage is Stage.APPROVE


def test_an_edit_that_keeps_the_answers_keeps_the_risk_and_the_approvals(asking: Desk) -> None:
    change = asking.normal_change_in(Stage.DEPLOY, normal_details(answers=ROUTINE))
    answers = asking.stored(change).details.answers
    edited = asking.edit(change, links=Links(ticket="https://example.com/T-1"))
    assert edited.details.answers == answers
    assert edited.details.risk is Level.LOW
    assert (edited.stage, edited.approvers()) == (Stage.DEPLOY, (ANNA.user_id,))
    entry = asking.last_entry(change, "edited").entry.details
    assert entry["fields"] == ["links"]
    assert "score" not in entry


def test_an_edit_reasks_a_question_the_policy_added_since(
    uow: FakeUnitOfWork, clock: FakeClock, policy: Policy
) -> None:
    before = Desk(uow, clock, policy)
    change = before.request(normal_details())
    after = Desk(uow, clock, WITH_QUESTIONS)
    with pytest.raises(ValidationFailed) as refused:
        after.edit(change, title="Raise the API pool to 60")
    assert refused.value.field == "answer.customers"
    edited = after.edit(change, title="Raise the API pool to 60", answers=RISKY)
    assert edited.details.risk is Level.HIGH


# -- the evidence an auditor reads ------------------------------------------------------------


def told(desk: Desk, change: Change) -> list[str]:
    entries = [e.entry for e in desk.trail(change)]
    return [s.sentence for s in steps(desk.stored(change), entries, desk.policy)]


def test_the_evidence_says_the_risk_came_from_the_answers_and_how(asking: Desk) -> None:
    medium = answered(customers="Yes", reversible="Yes", data="No", staging="No")
    change = asking.request(normal_details(answers=medium))
    asking.review(change, risk=Level.MEDIUM)
    requested, _, reviewed = told(asking, change)
    assert (
        "risk medium from the risk questionnaire, score 4.5 (customers: Yes +3; reversible: "
        "Yes +0; data: No +0; staging: No +1.5), impact low"
    ) in requested
    assert reviewed.startswith(
        "UPETER reviewed it and rated the risk medium, no lower than the risk questionnaire's "
        "medium, score 4.5 ("
    )


def test_answers_edited_to_score_high_count_the_next_approvals_as_high_risk(
    asking: Desk,
) -> None:
    change = asking.normal_change_in(Stage.APPROVE, normal_details(answers=ROUTINE))
    asking.edit(change, answers=RISKY)
    asking.approve(change, by=ANNA)
    sentences = told(asking, change)
    assert (
        "The risk questionnaire then rated it high, score 7 (customers: Yes +3;" in (sentences[-2])
    )
    assert sentences[-1] == (
        "UANNA approved it under the high-risk Normal rule: 2 approvals needed."
    )


def test_decimal_weights_add_up_as_a_person_adds_them() -> None:
    answers = (Answer("a", "x", 0.7), Answer("b", "y", 0.2))
    assert score(answers) == 0.9
    assert score((Answer("a", "x", 1.5), Answer("b", "y", 1.5))) == 3
