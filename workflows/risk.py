"""The risk questionnaire: the policy's questions, each answer weighted, and the bands that turn
the total into Low, Medium or High.

A policy without questions asks none: the requester rates the risk, as always. With questions,
a Normal change answers them and its risk is their result; the reviewer may raise it, never
lower it below that. Standard changes follow a pre-approved procedure and Emergency changes
must not wait on a form, so neither is asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from workflows.errors import ValidationFailed
from workflows.model import Answer, Classification, Level

#: What the form and the audit trail call the answer to question `id`: ANSWER_FIELD + id.
ANSWER_FIELD = "answer."
#: Slack offers at most this many radio buttons in one input.
MAX_CHOICES = 10
#: A form people fill in before every Normal change, not an audit of its own.
MAX_QUESTIONS = 15
#: The classifications that answer the questionnaire.
ASKED = frozenset({Classification.NORMAL})


def _number(value: Any) -> Any:
    # TOML's booleans are ints to Python, and "3" would be read as 3 by a lax parser: a
    # weight written as text or as true/false is a mistake worth stopping start-up for.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number: write a weight such as 3, 0 or -1.5")
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number a total can be made of: write 3, 0 or -1.5")
    return value


#: A weight or a band's bound: an integer or a decimal, as written.
Number = Annotated[int | float, BeforeValidator(_number)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    """One answer a question offers, and what it adds to the total."""

    label: str = Field(min_length=1, max_length=75)
    weight: Number


class Question(_Strict):
    """One `[[risk.question]]` table."""

    id: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    text: str = Field(min_length=1, max_length=150)
    hint: str = Field("", max_length=300)
    answers: tuple[Choice, ...] = ()

    def choice(self, label: str) -> Choice | None:
        return next((c for c in self.answers if c.label == label), None)


class Band(_Strict):
    """The totals a level covers: from `from` (inclusive) up to `below` (exclusive)."""

    start: Number | None = Field(None, alias="from")
    below: Number | None = None


class Questionnaire(_Strict):
    """The `[risk]` table: the questions, and a band of totals for each level."""

    question: tuple[Question, ...] = ()
    low: Band | None = None
    medium: Band | None = None
    high: Band | None = None

    def asks(self, classification: Classification) -> bool:
        return bool(self.question) and classification in ASKED

    def level_for(self, score: float) -> Level:
        """The level whose band holds `score` (the policy check makes them meet end to end;
        a total outside them all is as high as the highest)."""
        for level in (Level.HIGH, Level.MEDIUM):
            band = self.band(level)
            if band.start is not None and score >= band.start:
                return level
        return Level.LOW

    def band(self, level: Level) -> Band:
        found: Band | None = getattr(self, level.value)
        return found or Band()

    def lowest_total(self) -> float:
        return _total(min(c.weight for c in q.answers) for q in self.question if q.answers)

    def highest_total(self) -> float:
        return _total(max(c.weight for c in q.answers) for q in self.question if q.answers)


@dataclass(frozen=True)
class Assessment:
    """What the answers add up to, and the level that total falls in."""

    answers: tuple[Answer, ...]
    score: float
    level: Level

    @property
    def drivers(self) -> tuple[Answer, ...]:
        return drivers(self.answers)


def assess(questionnaire: Questionnaire, answers: Sequence[Answer]) -> Assessment:
    """Score the requester's answers against the policy's questions, in the policy's order,
    each answer with its wording and weight; ValidationFailed naming every question left
    unanswered, or answered with a choice it does not offer. Answers to questions the policy
    no longer asks are dropped."""
    given = {a.question: a.choice for a in answers}
    recorded: list[Answer] = []
    problems: list[tuple[str, str]] = []
    for question in questionnaire.question:
        label = given.get(question.id, "")
        choice = question.choice(label) if label else None
        if choice is None:
            offered = ", ".join(c.label for c in question.answers)
            problems.append(
                (
                    ANSWER_FIELD + question.id,
                    f"{label!r} is not one of the answers offered ({offered})."
                    if label
                    else f"answer “{question.text}”: the change's risk is worked out from it.",
                )
            )
            continue
        recorded.append(Answer(question.id, choice.label, choice.weight, question.text))
    if problems:
        raise ValidationFailed.of(problems)
    total = score(recorded)
    return Assessment(tuple(recorded), total, questionnaire.level_for(total))


def score(answers: Sequence[Answer]) -> float:
    """The total of the weights the answers carried."""
    return _total(a.weight for a in answers)


def _total(weights: Iterable[float]) -> float:
    # Rounded, so that 0.7 + 0.2 is 0.9 and lands in the band a person expects.
    total = round(sum(weights, 0), 9)
    return int(total) if total == int(total) else total


def drivers(answers: Sequence[Answer]) -> tuple[Answer, ...]:
    """The answers that raised the total, the heaviest first (ties in the order asked)."""
    raising = [a for a in answers if a.weight > 0]
    return tuple(sorted(raising, key=lambda a: -a.weight))


def format_number(value: float) -> str:
    """3 -> "3", 1.5 -> "1.5", 3.0 -> "3": as a person would write the weight."""
    return f"{value:g}"


def described(answers: Sequence[Answer]) -> dict[str, Any]:
    """The answers and their total as the audit trail keeps them."""
    return {
        "answers": {a.question: {"answer": a.choice, "weight": a.weight} for a in answers},
        "score": score(answers),
    }


def in_words(recorded: Mapping[str, Any]) -> str:
    """An audit event's answers and score (as `described` wrote them) in a phrase: "score 7
    (customers: Yes +3; staging: Yes -1)"; "" when the event has none. Read defensively: the
    details are stored JSON."""
    total = recorded.get("score")
    answers = recorded.get("answers")
    if not isinstance(total, int | float) or isinstance(total, bool):
        return ""
    said = []
    for question, answer in answers.items() if isinstance(answers, Mapping) else ():
        if isinstance(answer, Mapping) and isinstance(answer.get("weight"), int | float):
            weight = answer["weight"]
            said.append(f"{question}: {answer.get('answer')} {weight:+g}")
    return f"score {format_number(total)}" + (f" ({'; '.join(said)})" if said else "")


# -- the policy check -----------------------------------------------------------------------


def check_questionnaire(risk: Questionnaire) -> None:
    """ValueError("risk.<key>: what is wrong and the fix") for a questionnaire that cannot
    score every change: questions without answers, repeated ids or answers, and bands that
    overlap, leave a gap, or miss totals the answers can make."""
    if not risk.question:
        if risk.low or risk.medium or risk.high:
            raise ValueError(
                "risk.question: the bands need questions to score; add [[risk.question]] "
                "tables, or remove the [risk] bands"
            )
        return
    if len(risk.question) > MAX_QUESTIONS:
        raise ValueError(
            f"risk.question: {len(risk.question)} questions; ask at most {MAX_QUESTIONS}, the "
            "ones that really tell a risky change from a routine one"
        )
    seen: set[str] = set()
    for index, question in enumerate(risk.question):
        key = f"risk.question[{index}]"
        if question.id in seen:
            raise ValueError(
                f"{key}.id: {question.id!r} appears twice; give each question its own id"
            )
        seen.add(question.id)
        _check_answers(key, question)
    _check_bands(risk)


def _check_answers(key: str, question: Question) -> None:
    if len(question.answers) < 2:
        raise ValueError(
            f"{key}.answers: {question.id!r} needs at least two answers to choose from, each "
            'with a weight: answers = [{ label = "Yes", weight = 3 }, { label = "No", weight = 0 }]'
        )
    if len(question.answers) > MAX_CHOICES:
        raise ValueError(
            f"{key}.answers: {question.id!r} offers {len(question.answers)} answers; Slack shows "
            f"at most {MAX_CHOICES} to choose from"
        )
    labels: set[str] = set()
    for number, choice in enumerate(question.answers):
        if choice.label in labels:
            raise ValueError(
                f"{key}.answers[{number}].label: {choice.label!r} appears twice in "
                f"{question.id!r}; give each answer its own label"
            )
        labels.add(choice.label)


def _check_bands(risk: Questionnaire) -> None:
    for level in Level:
        if getattr(risk, level.value) is None:
            raise ValueError(
                f"risk.{level.value}: a questionnaire needs a band for each level; write "
                "low = { below = 3 }, medium = { from = 3, below = 6 }, high = { from = 6 }"
            )
    low, medium, high = risk.band(Level.LOW), risk.band(Level.MEDIUM), risk.band(Level.HIGH)
    _need(low.below, "low.below", "where low ends (medium starts there)")
    _need(medium.start, "medium.from", "where medium starts (low ends there)")
    _need(medium.below, "medium.below", "where medium ends (high starts there)")
    _need(high.start, "high.from", "where high starts (medium ends there)")
    for name, band in (("low", low), ("medium", medium), ("high", high)):
        if band.start is not None and band.below is not None and band.start >= band.below:
            raise ValueError(
                f"risk.{name}: from ({format_number(band.start)}) must be less than below "
                f"({format_number(band.below)})"
            )
    _meet("low", low, "medium", medium)
    _meet("medium", medium, "high", high)
    lowest, highest = risk.lowest_total(), risk.highest_total()
    if low.start is not None and lowest < low.start:
        raise ValueError(
            f"risk.low.from: the answers can total {format_number(lowest)}, which no band "
            f"covers (low starts at {format_number(low.start)}); start low at "
            f"{format_number(lowest)} or less, or leave its from out"
        )
    if high.below is not None and highest >= high.below:
        raise ValueError(
            f"risk.high.below: the answers can total {format_number(highest)}, which no band "
            f"covers (high ends below {format_number(high.below)}); leave high's below out, "
            "so high covers every total from its start"
        )


def _need(value: float | None, key: str, what: str) -> None:
    if value is None:
        raise ValueError(f"risk.{key}: this key is required: it says {what}")


def _meet(lower: str, first: Band, upper: str, second: Band) -> None:
    """The band below ends exactly where the next one starts."""
    assert first.below is not None and second.start is not None  # checked by _need
    end, start = first.below, second.start
    if start < end:
        raise ValueError(
            f"risk.{upper}.from: {upper} overlaps {lower}: {lower} runs up to (not including) "
            f"{format_number(end)} and {upper} starts at {format_number(start)}; start {upper} "
            f"at {format_number(end)}"
        )
    if start > end:
        raise ValueError(
            f"risk.{upper}.from: leaves a gap: {lower} ends below {format_number(end)} and "
            f"{upper} starts at {format_number(start)}, so a total from {format_number(end)} "
            f"up to {format_number(start)} has no level; start {upper} at {format_number(end)}"
        )
