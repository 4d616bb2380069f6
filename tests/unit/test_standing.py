"""The read model every view of a change is drawn from: one answer to each question the card,
the lists and App Home ask of a change, on changes the real use cases made."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.bot.changes import SCENARIOS, a_desk, every_change
from tests.unit.builders import NOW
from workflows.model import Change, Classification, Stage
from workflows.stages import Action, available_actions
from workflows.standing import standing

CHANGES = list(every_change())


def made(name: str) -> tuple[Change, object]:
    desk = a_desk()
    return desk.stored(SCENARIOS[name](desk)), desk.policy


@pytest.mark.parametrize(("name", "desk", "change"), CHANGES, ids=[n for n, _, _ in CHANGES])
def test_the_moves_are_the_stage_machines(name: str, desk: object, change: Change) -> None:
    policy = desk.policy  # type: ignore[attr-defined]
    for now in (None, NOW, NOW + timedelta(days=2)):
        assert list(standing(change, policy, now).moves) == available_actions(change, policy, now)


@pytest.mark.parametrize(
    ("name", "done"),
    [
        ("normal draft", 0),
        ("normal in review", 1),
        ("normal in test", 2),
        ("normal in approve", 3),
        ("normal authorised", 4),
        ("normal deploying", 4),
        ("normal closed", 5),
        # Cancelled: judged by what is on record.
        ("normal cancelled", 1),
        ("normal cancelled when authorised", 4),
        ("standard cancelled", 4),
        ("emergency cancelled", 1),
    ],
)
def test_stages_done(name: str, done: int) -> None:
    change, policy = made(name)
    assert standing(change, policy, NOW).stages_done == done  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "approvers", "needed", "authorised"),
    [
        ("normal in approve", 0, 1, False),
        ("normal half approved", 1, 2, False),
        ("normal authorised", 1, 1, True),
        ("standard authorised", 0, 0, True),
        ("emergency in review", 0, 1, False),
        ("emergency authorised", 1, 1, True),
    ],
)
def test_approvals_had_and_needed(name: str, approvers: int, needed: int, authorised: bool) -> None:
    change, policy = made(name)
    shown = standing(change, policy, NOW)  # type: ignore[arg-type]
    assert (len(shown.approvers), shown.approvals_needed) == (approvers, needed)
    assert shown.authorised is authorised


def test_break_glass_opens_at_a_time_and_is_a_move_only_from_then() -> None:
    change, policy = made("emergency in review")
    opens = change.created_at + timedelta(minutes=15)
    before = standing(change, policy, opens - timedelta(seconds=1))  # type: ignore[arg-type]
    after = standing(change, policy, opens)  # type: ignore[arg-type]
    assert before.break_glass_opens == after.break_glass_opens == opens
    assert (before.break_glass_open, after.break_glass_open) == (False, True)
    assert Action.BREAK_GLASS not in before.moves and Action.BREAK_GLASS in after.moves
    # The card must be redrawn when it opens, and not after.
    assert (before.changes_at, after.changes_at) == (opens, None)


@pytest.mark.parametrize(
    "name", ["emergency authorised", "emergency deploying", "normal in approve", "emergency closed"]
)
def test_no_break_glass_once_approved_or_for_other_kinds(name: str) -> None:
    change, policy = made(name)
    shown = standing(change, policy, NOW + timedelta(days=1))  # type: ignore[arg-type]
    assert shown.break_glass_opens is None and shown.changes_at is None
    assert Action.BREAK_GLASS not in shown.moves


def test_documents_owed_before_and_after_an_emergency_is_deployed() -> None:
    declared, policy = made("emergency in review")
    assert declared.classification is Classification.EMERGENCY
    to_owe = standing(declared, policy, NOW).documents_owed  # type: ignore[arg-type]
    assert "test_evidence" in to_owe
    owed, policy = made("emergency review owed")
    assert owed.review_owed
    assert standing(owed, policy, NOW).documents_owed == owed.owed_documents  # type: ignore[arg-type]
    normal, policy = made("normal in approve")
    assert standing(normal, policy, NOW).documents_owed == ()  # type: ignore[arg-type]


def test_a_review_is_overdue_only_past_its_due_time() -> None:
    owed, policy = made("emergency review owed")
    assert owed.review_due_at is not None
    due = owed.review_due_at
    assert not standing(owed, policy, due).review_overdue  # type: ignore[arg-type]
    assert standing(owed, policy, due + timedelta(seconds=1)).review_overdue  # type: ignore[arg-type]
    assert not standing(owed, policy, None).review_overdue  # type: ignore[arg-type]
    assert owed.stage is not Stage.CLOSED
