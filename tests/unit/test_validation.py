"""What a requester writes: each field's requirement and limit, named when it is wrong."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.unit.builders import (
    NOW,
    TOMORROW,
    Desk,
    a_policy,
    emergency_details,
    normal_details,
    nothing_written,
    standard_details,
)
from workflows.errors import PolicyViolation, ValidationFailed
from workflows.model import ChangeDetails, Classification, Links, Rollback, Window
from workflows.policy import Policy
from workflows.validation import LIMITS, MAX_SERVICES, check_link, check_text, validate_details


def refused_field(details: ChangeDetails, policy: Policy, now: datetime | None = NOW) -> str:
    with pytest.raises(ValidationFailed) as refused:
        validate_details(details, policy, now)
    assert str(refused.value) == f"{refused.value.field}: {refused.value.reason}"
    return refused.value.field


def test_a_complete_normal_request_is_accepted_trimmed(policy: Policy) -> None:
    details = normal_details(title="  Raise the pool  ", services=(" api ", "", "worker"))
    checked = validate_details(details, policy, NOW)
    assert checked.title == "Raise the pool"
    assert checked.services == ("api", "worker")


# -- title ----------------------------------------------------------------------------------


@pytest.mark.parametrize("title", ["", "   "])
def test_the_title_is_required(title: str, policy: Policy) -> None:
    assert refused_field(normal_details(title=title), policy) == "title"


def test_the_title_holds_at_most_150_characters(policy: Policy) -> None:
    assert validate_details(normal_details(title="t" * 150), policy, NOW).title == "t" * 150
    with pytest.raises(ValidationFailed, match=r"^title: at most 150 characters \(this has 151\)"):
        validate_details(normal_details(title="t" * 151), policy, NOW)


# -- description, scope, services, rollback ----------------------------------------------


def test_a_normal_change_needs_a_description(policy: Policy) -> None:
    assert refused_field(normal_details(description=" "), policy) == "description"


def test_a_standard_change_needs_no_description(policy: Policy) -> None:
    assert validate_details(standard_details(description=""), policy, NOW)


def test_the_description_holds_at_most_3000_characters(policy: Policy) -> None:
    assert validate_details(normal_details(description="d" * 3000), policy, NOW)
    assert refused_field(normal_details(description="d" * 3001), policy) == "description"


def test_the_scope_must_be_one_of_the_policys_categories(policy: Policy) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_details(normal_details(scope="network"), policy, NOW)
    assert refused.value.field == "scope"
    assert "(code, database)" in refused.value.reason


@pytest.mark.parametrize("classification", [Classification.NORMAL, Classification.STANDARD])
def test_normal_and_standard_changes_name_an_affected_service(
    classification: Classification, policy: Policy
) -> None:
    details = normal_details() if classification is Classification.NORMAL else standard_details()
    assert refused_field(details.with_changes(services=(" ",)), policy) == "services"


def test_at_most_twenty_services(policy: Policy) -> None:
    assert MAX_SERVICES == 20
    twenty = tuple(f"svc-{n}" for n in range(20))
    assert validate_details(normal_details(services=twenty), policy, NOW)
    assert refused_field(normal_details(services=(*twenty, "one-more")), policy) == "services"


def test_a_service_name_holds_at_most_80_characters(policy: Policy) -> None:
    assert validate_details(normal_details(services=("s" * 80,)), policy, NOW)
    assert refused_field(normal_details(services=("s" * 81,)), policy) == "services"


def test_a_normal_change_needs_a_rollback_plan_or_a_reason_it_cannot_be_reversed(
    policy: Policy,
) -> None:
    assert refused_field(normal_details(rollback=Rollback()), policy) == "rollback"
    assert refused_field(normal_details(rollback=Rollback(plan="  ")), policy) == "rollback"
    irreversible = Rollback(not_reversible_reason="Deleting data cannot be undone.")
    assert validate_details(normal_details(rollback=irreversible), policy, NOW)


@pytest.mark.parametrize(
    "rollback", [Rollback(plan="r" * 3001), Rollback(not_reversible_reason="r" * 3001)]
)
def test_the_rollback_holds_at_most_3000_characters(rollback: Rollback, policy: Policy) -> None:
    assert refused_field(normal_details(rollback=rollback), policy) == "rollback"


# -- window -------------------------------------------------------------------------------


@pytest.mark.parametrize("classification", [Classification.NORMAL, Classification.STANDARD])
def test_normal_and_standard_changes_need_a_window(
    classification: Classification, policy: Policy
) -> None:
    details = normal_details() if classification is Classification.NORMAL else standard_details()
    assert refused_field(details.with_changes(window=None), policy) == "window"


def test_the_window_needs_a_time_zone(policy: Policy) -> None:
    naive_start = TOMORROW.start.replace(tzinfo=None)
    for window in (
        Window(naive_start, TOMORROW.end),
        Window(TOMORROW.start, TOMORROW.end.replace(tzinfo=None)),
    ):
        with pytest.raises(ValidationFailed, match="need a time zone"):
            validate_details(normal_details(window=window), policy, NOW)


@pytest.mark.parametrize("length", [timedelta(hours=-1), timedelta()])
def test_the_window_must_end_after_it_starts(length: timedelta, policy: Policy) -> None:
    window = Window(TOMORROW.start, TOMORROW.start + length)
    with pytest.raises(ValidationFailed, match="ends before it starts"):
        validate_details(normal_details(window=window), policy, NOW)


def test_the_window_may_not_lie_in_the_past(policy: Policy) -> None:
    yesterday = Window(NOW - timedelta(days=1), NOW - timedelta(hours=23))
    with pytest.raises(ValidationFailed, match="lies in the past"):
        validate_details(normal_details(window=yesterday), policy, NOW)


def test_a_window_already_under_way_is_accepted(policy: Policy) -> None:
    under_way = Window(NOW - timedelta(minutes=5), NOW + timedelta(hours=1))
    assert validate_details(normal_details(window=under_way), policy, NOW)


def test_a_window_is_not_judged_against_the_clock_when_no_time_is_given(policy: Policy) -> None:
    yesterday = Window(NOW - timedelta(days=1), NOW - timedelta(hours=23))
    assert validate_details(normal_details(window=yesterday), policy, None)


# -- links and procedure --------------------------------------------------------------------


@pytest.mark.parametrize("field", ["pull_request", "ticket", "incident"])
def test_a_link_must_be_a_web_address(field: str, policy: Policy) -> None:
    for link in ["example.com/pr/1", "ftp://example.com", "https://exa mple.com", "<https://x|y>"]:
        details = normal_details(links=Links(**{field: link}))
        assert refused_field(details, policy) == field, link


def test_a_link_holds_at_most_500_characters(policy: Policy) -> None:
    long_link = "https://example.com/" + "x" * 481
    assert refused_field(normal_details(links=Links(ticket=long_link)), policy) == "ticket"
    assert check_link("ticket", "http://example.com/T-1") == "http://example.com/T-1"


def test_only_a_standard_change_names_a_catalog_procedure(policy: Policy) -> None:
    assert refused_field(normal_details(procedure_id="restart-service"), policy) == "procedure"


@pytest.mark.parametrize("procedure_id", ["", "reboot-the-world"])
def test_a_standard_change_outside_the_catalog_must_be_made_normal(
    procedure_id: str, policy: Policy
) -> None:
    with pytest.raises(PolicyViolation, match=r"not a pre-approved procedure.*choose Normal"):
        validate_details(standard_details(procedure_id=procedure_id), policy, NOW)


def test_a_standard_change_takes_the_scope_of_its_procedure(policy: Policy) -> None:
    checked = validate_details(standard_details(scope="database"), policy, NOW)
    assert checked.scope == "code"


# -- emergency ----------------------------------------------------------------------------


def test_an_emergency_change_needs_only_a_title_and_a_scope(policy: Policy) -> None:
    assert validate_details(emergency_details(), policy, NOW)
    assert refused_field(emergency_details(title=""), policy) == "title"
    assert refused_field(emergency_details(scope=""), policy) == "scope"


def test_what_an_emergency_change_does_give_is_still_checked(policy: Policy) -> None:
    assert refused_field(emergency_details(links=Links(incident="INC-1")), policy) == "incident"
    backwards = Window(TOMORROW.end, TOMORROW.start)
    assert refused_field(emergency_details(window=backwards), policy) == "window"


# -- free text everywhere -----------------------------------------------------------------


@pytest.mark.parametrize(("key", "limit"), LIMITS.items())
def test_each_kind_of_text_has_its_limit(key: str, limit: int) -> None:
    assert check_text("field", "x" * limit, key) == "x" * limit
    with pytest.raises(ValidationFailed) as refused:
        check_text("field", "x" * (limit + 1), key)
    assert refused.value.field == "field"


def test_required_text_is_not_satisfied_by_spaces() -> None:
    with pytest.raises(ValidationFailed, match=r"^reason: this field is required.$"):
        check_text("reason", " \n ", "reason", required=True)


def test_a_refused_request_writes_nothing(desk: Desk) -> None:
    bad_requests: list[dict[str, Any]] = [{"title": ""}, {"scope": "network"}, {"window": None}]
    for fields in bad_requests:
        with nothing_written(desk.uow), pytest.raises(ValidationFailed):
            desk.request(normal_details(**fields))
    with nothing_written(desk.uow), pytest.raises(PolicyViolation):
        desk.request(standard_details(procedure_id="reboot-the-world"))


def test_a_standard_change_outside_the_catalog_is_told_to_choose_normal_whatever_its_scope() -> (
    None
):
    # The Standard form has no scope field: the catalog, not the scope, is the problem.
    details = standard_details(procedure_id="reboot-the-world").with_changes(scope="")
    with pytest.raises(PolicyViolation, match="choose Normal"):
        validate_details(details, a_policy(), NOW)
