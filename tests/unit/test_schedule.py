"""The change calendar's rules: which changes are booked, which occupy their windows, which
collide, the weeks a window is indexed under, and what a conflict does to the process (it
warns and is recorded; the policy may ask one more approval for it)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import (
    ARTHUR,
    NOW,
    TOMORROW,
    Desk,
    a_booking,
    a_policy,
    emergency_details,
    normal_details,
    utc,
)
from tests.unit.fakes import FakeClock, FakeUnitOfWork
from workflows.model import Stage, Window
from workflows.schedule import EPOCH, booking, conflicts, occupies, overlap, weeks
from workflows.standing import standing, standings

# -- overlap and conflicts ----------------------------------------------------------------------


def test_windows_that_only_touch_do_not_overlap() -> None:
    ten, eleven, noon = utc(2026, 12, 7, 10), utc(2026, 12, 7, 11), utc(2026, 12, 7, 12)
    assert overlap(Window(ten, eleven), Window(eleven, noon)) is None
    assert overlap(Window(ten, noon), Window(eleven, noon)) == Window(eleven, noon)


def test_a_conflict_needs_a_common_service_and_an_overlap() -> None:
    mine = a_booking(1, utc(2026, 12, 7, 10), 2, "payments", "ledger")
    same_time_other_service = a_booking(2, utc(2026, 12, 7, 10), 2, "search")
    same_service_later = a_booking(3, utc(2026, 12, 7, 12), 1, "payments")
    both = a_booking(4, utc(2026, 12, 7, 11), 3, "ledger", "search", "payments")

    found = conflicts(mine, [same_time_other_service, same_service_later, both, mine])

    assert [c.other.number for c in found] == [4]
    assert found[0].services == ("ledger", "payments")
    assert found[0].overlap == Window(utc(2026, 12, 7, 11), utc(2026, 12, 7, 12))


def test_changes_that_no_longer_occupy_their_windows_do_not_conflict() -> None:
    mine = a_booking(1, utc(2026, 12, 7, 10), 2)
    deployed = a_booking(2, utc(2026, 12, 7, 10), 2, occupies=False)
    assert conflicts(mine, [deployed]) == ()
    assert conflicts(a_booking(3, utc(2026, 12, 7, 10), 2, occupies=False), [mine]) == ()


def test_conflicts_come_earliest_first() -> None:
    mine = a_booking(1, utc(2026, 12, 7, 8), 8)
    later, earlier = a_booking(2, utc(2026, 12, 7, 12), 1), a_booking(3, utc(2026, 12, 7, 9), 1)
    assert [c.other.number for c in conflicts(mine, [later, earlier])] == [3, 2]


# -- the weeks a window is indexed under ----------------------------------------------------------


def test_a_window_is_indexed_under_every_week_it_touches() -> None:
    monday = EPOCH + timedelta(weeks=2935)  # Monday 2026-04-27
    assert monday.weekday() == 0
    assert weeks(Window(monday, monday + timedelta(hours=1))) == range(2935, 2936)
    # Ending exactly at the next Monday's midnight does not touch that week.
    assert weeks(Window(monday, monday + timedelta(days=7))) == range(2935, 2936)
    # Sunday night to Monday morning touches both.
    sunday = monday - timedelta(hours=2)
    assert weeks(Window(sunday, monday + timedelta(hours=2))) == range(2934, 2936)
    assert len(weeks(Window(monday, monday + timedelta(days=20)))) == 3


# -- what a change's booking is -------------------------------------------------------------------


def test_a_change_is_booked_until_cancelled_and_occupies_until_deployed(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    assert occupies(change)
    booked = booking(change)
    assert booked is not None and booked.window == TOMORROW and booked.services == ("api",)

    deployed = desk.deploying()
    deployed = desk.record_outcome(deployed)
    assert booking(deployed) is not None and not occupies(deployed)

    cancelled = desk.cancel(desk.request())
    assert cancelled.stage is Stage.CANCELLED and booking(cancelled) is None


def test_an_emergency_without_a_window_is_not_booked(desk: Desk) -> None:
    change = desk.request(emergency_details())
    assert booking(change) is None and not occupies(change)


# -- a conflict in the process --------------------------------------------------------------------


def test_a_request_into_another_changes_window_goes_ahead_and_records_it(desk: Desk) -> None:
    first = desk.request(normal_details(services=("payments",)))
    later_window = Window(TOMORROW.start + timedelta(minutes=30), TOMORROW.end + timedelta(hours=1))
    second = desk.request(normal_details(services=("payments", "ledger"), window=later_window))

    assert second.stage is Stage.REVIEW  # warned, not refused
    requested = desk.trail(second)[0].entry
    assert requested.details["conflicts"] == [first.ref]
    assert "conflicts" not in desk.trail(first)[0].entry.details
    (seen,) = desk.uow.changes.conflicts(desk.stored(first))
    assert seen.other.number == second.number and seen.services == ("payments",)


def test_a_window_moved_away_ends_the_conflict_and_the_edit_says_so(desk: Desk) -> None:
    first = desk.request()
    second = desk.request()
    assert [c.other.number for c in desk.uow.changes.conflicts(desk.stored(first))] == [2]

    later = Window(TOMORROW.start + timedelta(days=1), TOMORROW.end + timedelta(days=1))
    desk.edit(second, window=later)

    assert desk.uow.changes.conflicts(desk.stored(first)) == ()
    edited = desk.last_entry(second, "edited").entry
    assert "conflicts" not in edited.details
    desk.edit(second, window=TOMORROW)
    assert desk.last_entry(second, "edited").entry.details["conflicts"] == [first.ref]


@pytest.fixture
def strict(uow: FakeUnitOfWork, clock: FakeClock) -> Desk:
    policy = a_policy(approvals="normal = 1\nnormal_high_risk = 2\nconflict_extra = 1")
    return Desk(uow, clock, policy)


def test_the_policy_may_ask_one_more_approval_of_a_change_in_conflict(strict: Desk) -> None:
    alone = strict.normal_change_in(Stage.DEPLOY)  # one approval: nothing else booked then
    assert len(alone.approvals) == 1

    crowded = strict.normal_change_in(Stage.APPROVE)  # alone's window, its service
    crowded = strict.approve(crowded)
    assert crowded.stage is Stage.APPROVE  # 1 of 2
    approved = strict.last_entry(crowded, "approved").entry
    assert approved.details["conflicts"] == [alone.ref]
    shown = standing(crowded, strict.policy, NOW, strict.uow.changes.conflicts(crowded))
    assert shown.approvals_needed == 2 and not shown.authorised

    crowded = strict.approve(crowded, by=ARTHUR)
    assert crowded.stage is Stage.DEPLOY


def test_a_list_counts_the_extra_approval_of_the_changes_in_conflict(strict: Desk) -> None:
    alone = strict.normal_change_in(Stage.DEPLOY)
    crowded = strict.approve(strict.normal_change_in(Stage.APPROVE))
    found = {crowded.number: strict.uow.changes.conflicts(crowded)}

    shown = standings([alone, crowded], strict.policy, NOW, found)

    assert [one.approvals_needed for one in shown] == [1, 2]
    assert [c.other.ref for c in shown[1].conflicts] == [alone.ref]
    assert standings([crowded], strict.policy, NOW)[0].approvals_needed == 1  # not told


def test_without_conflict_extra_a_conflict_asks_no_more_approvals(desk: Desk) -> None:
    desk.normal_change_in(Stage.DEPLOY)
    second = desk.approve(desk.normal_change_in(Stage.APPROVE))
    assert second.stage is Stage.DEPLOY
    assert desk.last_entry(second, "approved").entry.details["conflicts"] == ["CHG-0001"]
