from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tests.unit.builders import ALICE, ANNA, IVAN, NOW, PETER, a_change
from workflows.model import (
    FIVE_STAGES,
    Classification,
    Level,
    Outcome,
    PeerReview,
    Rollback,
    Stage,
    Window,
    format_ref,
    parse_ref,
    pull_request_key,
    ref_in,
    seen_digest,
)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("CHG-0042", 42),
        ("chg-42", 42),
        ("42", 42),
        (" CHG-1 ", 1),
        ("CHG-123456", 123456),
        ("CHG-2147483647", 2**31 - 1),
    ],
)
def test_a_change_is_found_by_its_reference_however_it_is_typed(text: str, number: int) -> None:
    assert parse_ref(text) == number


@pytest.mark.parametrize(
    "text",
    [
        *("", "CHG-", "CHG-0", "0", "-3", "CHG-4x", "INC-42", "1" * 13, "²", "CHG-①", "4²"),
        # No change can have a number its column cannot hold (a 32-bit integer on PostgreSQL).
        *("CHG-2147483648", "999999999999"),
    ],
)
def test_anything_else_is_not_a_reference(text: str) -> None:
    assert parse_ref(text) is None


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("release/CHG-42-fix", 42),
        ("chg-7", 7),
        ("hotfix/CHG-99999999999-then-CHG-12", 12),
        ("CHG-2147483648", None),
        ("main", None),
    ],
)
def test_a_branch_names_the_first_reference_a_change_can_have(
    name: str, number: int | None
) -> None:
    assert ref_in(name) == number


def test_references_are_padded_to_four_digits() -> None:
    assert (format_ref(7), format_ref(12345)) == ("CHG-0007", "CHG-12345")
    assert parse_ref(format_ref(7)) == 7


def test_the_five_stages_come_in_order_and_two_stages_are_final() -> None:
    assert [s.label for s in FIVE_STAGES] == [
        "Request",
        "Review",
        "Test",
        "Approve",
        "Deploy and verify",
    ]
    assert {s for s in Stage if s.is_final} == {Stage.CLOSED, Stage.CANCELLED}


def test_only_a_failed_or_rolled_back_outcome_owes_a_review_by_itself() -> None:
    assert {o for o in Outcome if o.owes_review} == {Outcome.FAILED, Outcome.ROLLED_BACK}
    assert Outcome.SUCCESSFUL_WITH_ISSUES.label == "Successful with issues"


def test_classifications_are_named_as_the_policy_names_them() -> None:
    assert [c.label for c in Classification] == ["Standard", "Normal", "Emergency"]


def test_risk_levels_are_ranked() -> None:
    assert Level.LOW.rank < Level.MEDIUM.rank < Level.HIGH.rank


def test_a_rollback_is_given_as_a_plan_or_as_a_reason_there_is_none() -> None:
    assert Rollback(plan="Revert.").is_given
    assert Rollback(not_reversible_reason="Data is deleted.").is_given
    assert not Rollback(plan="  ").is_given


def test_the_reviewed_risk_overrides_the_requested_one() -> None:
    requested = a_change()
    reviewed = a_change(review=PeerReview(PETER.user_id, NOW, "Riskier than it looks.", Level.HIGH))
    assert (requested.risk, reviewed.risk) == (Level.LOW, Level.HIGH)


def test_the_implementer_answers_for_a_change_else_the_requester() -> None:
    change = a_change()
    assert change.owner == IVAN.user_id
    assert change.people_in_charge() == {ALICE.user_id, IVAN.user_id}
    change.details = change.details.with_changes(implementer="")
    assert change.owner == ALICE.user_id
    assert change.people_in_charge() == {ALICE.user_id}
    assert ANNA.user_id not in change.people_in_charge()


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://github.com/Acme/API/pull/12", "acme/api#12"),
        ("https://github.com/acme/api/pull/0012/files", "acme/api#12"),
        ("https://ghe.example.com/team/svc.io/pull/7", "team/svc.io#7"),
        ("https://gitlab.example.com/acme/api/-/merge_requests/3", ""),
        ("https://example.com/pr/1", ""),
        ("", ""),
    ],
)
def test_a_pull_request_is_known_by_its_repository_and_number(url: str, key: str) -> None:
    assert pull_request_key(url) == key


def test_what_a_change_says_is_fingerprinted_the_same_however_its_times_are_held() -> None:
    """Read back from the database its times are in UTC; kept in memory after a save they are
    in the zone they were given in: the same change, the same fingerprint."""
    details = a_change(Classification.NORMAL, Stage.APPROVE).details
    assert details.window is not None
    elsewhere = Window(
        details.window.start.astimezone(ZoneInfo("Europe/Berlin")),
        details.window.end.astimezone(timezone(timedelta(hours=5, minutes=30))),
    )

    assert seen_digest(replace(details, window=elsewhere)) == seen_digest(details)
    assert seen_digest(replace(details, title="Something else")) != seen_digest(details)
