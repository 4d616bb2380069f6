"""DORA's metrics from fixed change records: what counts as a deployment, a failure, a
recovery and rework, and what is left unmeasured rather than made up."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.builders import a_change
from workflows.metrics import dora, last_days, measure, previous, week_of, weeks_of
from workflows.model import Change, Classification, Outcome, Stage, Window

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)
FOUR_WEEKS = Window(MONDAY, MONDAY + timedelta(weeks=4))
_NUMBERS = itertools.count(1)


def deployed(
    outcome: Outcome,
    at: datetime,
    *,
    requested: timedelta = timedelta(days=2),
    services: tuple[str, ...] = ("api",),
    classification: Classification = Classification.NORMAL,
) -> Change:
    change = a_change(classification, Stage.CLOSED, outcome=outcome, outcome_at=at)
    return replace(
        change,
        number=next(_NUMBERS),
        created_at=at - requested,
        details=change.details.with_changes(services=services),
    )


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def test_a_period_without_deployments_measures_nothing() -> None:
    found = dora([], FOUR_WEEKS)
    assert found.deployments == 0 and found.per_day == 0
    assert found.lead_time is None and found.fail_rate is None
    assert found.recovery_time is None and found.rework_rate is None


def test_frequency_lead_time_and_fail_rate() -> None:
    day = MONDAY + timedelta(days=3)
    changes = [
        deployed(Outcome.SUCCESSFUL, day, requested=hours(10)),
        deployed(Outcome.SUCCESSFUL_WITH_ISSUES, day + hours(1), requested=hours(30)),
        deployed(Outcome.FAILED, day + hours(2), requested=hours(1)),
        deployed(Outcome.SUCCESSFUL, day + hours(3), requested=hours(20)),
    ]

    found = dora(changes, FOUR_WEEKS)

    assert found.deployments == 4
    assert found.per_day == pytest.approx(4 / 28)
    assert found.lead_time == hours(20)  # the median of 10, 30 and 20: failures do not count
    assert found.fail_rate == pytest.approx(0.25)


def test_outcomes_outside_the_period_and_changes_without_one_are_not_deployments() -> None:
    before = deployed(Outcome.SUCCESSFUL, MONDAY - hours(1))
    after = deployed(Outcome.SUCCESSFUL, FOUR_WEEKS.end)
    open_change = a_change(Classification.NORMAL, Stage.DEPLOY)
    assert dora([before, open_change, after], FOUR_WEEKS).deployments == 0


def test_recovery_is_the_next_success_on_a_service_the_failure_named() -> None:
    broke = MONDAY + timedelta(days=1)
    changes = [
        deployed(Outcome.ROLLED_BACK, broke, services=("payments", "ledger")),
        deployed(Outcome.SUCCESSFUL, broke + hours(1), services=("search",)),  # elsewhere
        deployed(Outcome.SUCCESSFUL, broke + hours(3), services=("ledger",)),
        deployed(Outcome.SUCCESSFUL, broke + hours(5), services=("payments",)),  # counted once
        deployed(Outcome.FAILED, broke + hours(6), services=("search",)),
        deployed(Outcome.FAILED, broke + hours(7), services=("search",)),
        deployed(Outcome.SUCCESSFUL, broke + hours(9), services=("search",)),
        deployed(Outcome.FAILED, broke + hours(10), services=("checkout",)),  # never recovered
    ]

    found = dora(changes, FOUR_WEEKS)

    assert found.failures == 4 and found.unrecovered == 1
    assert found.recovery_time == hours(3)  # the median of 3, 3 and 2


def test_a_service_recovers_whatever_case_its_name_is_written_in() -> None:
    broke = MONDAY + timedelta(days=1)
    changes = [
        deployed(Outcome.FAILED, broke, services=("Payments",)),
        deployed(Outcome.SUCCESSFUL, broke + hours(2), services=(" payments",)),
    ]

    found = dora(changes, FOUR_WEEKS)

    assert found.unrecovered == 0 and found.recovery_time == hours(2)


def test_a_failure_naming_no_service_is_counted_apart_never_recovered_by_a_guess() -> None:
    broke = MONDAY + timedelta(days=1)
    changes = [
        # An emergency declared mid-incident, with no services named: what restored it?
        deployed(Outcome.FAILED, broke, services=()),
        deployed(Outcome.SUCCESSFUL, broke + hours(4), services=()),  # another, unrelated
        deployed(Outcome.ROLLED_BACK, broke + hours(5), services=("api",)),
        deployed(Outcome.SUCCESSFUL, broke + hours(6), services=(" ",)),  # names none either
        deployed(Outcome.SUCCESSFUL, broke + hours(7), services=("api",)),
    ]

    found = dora(changes, FOUR_WEEKS)

    assert found.failures == 2 and found.fail_rate == pytest.approx(0.4)
    assert found.recovery_time == hours(2)  # the api's alone
    assert found.recovery_unknown == 1 and found.unrecovered == 0


def test_rework_is_the_share_of_emergency_deployments() -> None:
    at = MONDAY + hours(1)
    changes = [
        deployed(Outcome.SUCCESSFUL, at, classification=Classification.EMERGENCY),
        deployed(Outcome.SUCCESSFUL, at + hours(1)),
        deployed(Outcome.SUCCESSFUL, at + hours(2), classification=Classification.STANDARD),
        deployed(Outcome.FAILED, at + hours(3)),
    ]
    found = dora(changes, FOUR_WEEKS)
    assert found.emergencies == 1 and found.rework_rate == pytest.approx(0.25)


def test_changes_must_come_in_the_order_of_their_outcomes() -> None:
    first = deployed(Outcome.SUCCESSFUL, MONDAY + hours(5))
    with pytest.raises(ValueError, match="order of their outcomes"):
        dora([first, deployed(Outcome.SUCCESSFUL, MONDAY + hours(1))], FOUR_WEEKS)


def test_weeks_start_on_monday_and_the_trend_splits_one_pass_by_week() -> None:
    wednesday = MONDAY + timedelta(days=2, hours=15)
    assert week_of(wednesday) == MONDAY
    assert week_of(MONDAY) == MONDAY
    period = Window(wednesday, wednesday + timedelta(days=10))
    assert [w.start for w in weeks_of(period)] == [wednesday, MONDAY + timedelta(weeks=1)]
    assert weeks_of(period)[-1].end == period.end

    changes = [
        deployed(Outcome.SUCCESSFUL, MONDAY + timedelta(days=1)),
        deployed(Outcome.FAILED, MONDAY + timedelta(days=8)),
        deployed(Outcome.SUCCESSFUL, MONDAY + timedelta(days=9)),
        deployed(Outcome.SUCCESSFUL, MONDAY + timedelta(days=22)),
    ]
    weekly = measure(changes, FOUR_WEEKS).weeks
    assert [week.deployments for week in weekly] == [1, 2, 0, 1]
    assert [week.fail_rate for week in weekly] == [0.0, 0.5, None, 0.0]
    assert weekly[1].recovery_time == timedelta(days=1)


def test_the_previous_period_is_as_long_and_ends_where_this_one_starts() -> None:
    assert previous(FOUR_WEEKS) == Window(MONDAY - timedelta(weeks=4), MONDAY)


def test_a_trend_measures_the_period_the_one_before_and_each_week_in_one_pass() -> None:
    earlier = [deployed(Outcome.FAILED, MONDAY - timedelta(days=3))]
    now = [
        deployed(Outcome.SUCCESSFUL, MONDAY + timedelta(days=1)),
        deployed(Outcome.SUCCESSFUL, MONDAY + timedelta(days=15)),
    ]

    trend = measure(iter(earlier + now), FOUR_WEEKS)

    assert (trend.before.deployments, trend.before.fail_rate) == (1, 1.0)
    assert (trend.now.deployments, trend.now.fail_rate) == (2, 0.0)
    assert [week.deployments for week in trend.weeks] == [1, 0, 1, 0]


def test_the_last_days_end_with_the_current_minute() -> None:
    now = datetime(2026, 12, 6, 9, 41, 17, 5, tzinfo=UTC)
    period = last_days(30, now)
    assert period.end == datetime(2026, 12, 6, 9, 42, tzinfo=UTC) and period.start < now
    assert period.end - period.start == timedelta(days=30)
