"""Freeze windows from the policy: one-off and recurring, in their own time zones, across
daylight-saving changes, and what each forbids."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.builders import (
    POLICY_TOML,
    TOMORROW,
    WEEKEND,
    Desk,
    emergency_details,
    normal_details,
)
from workflows.errors import PolicyError, ValidationFailed
from workflows.freezes import blocking, in_force
from workflows.gate import Decision, Target, decide
from workflows.model import Change, Classification, GateStatus, Stage, Window
from workflows.policy import Policy, parse_policy
from workflows.standing import standing

YEAR_END = """
[[freeze]]
name = "Year end"
reason = "Sales peak."
services = ["checkout"]
allows = "none"
start = 2026-12-18
end = 2027-01-04
timezone = "America/New_York"
"""
THIRD_SATURDAY = """
[[freeze]]
name = "Maintenance Saturday"
reason = "The data centre's monthly maintenance."
rrule = "FREQ=MONTHLY;BYDAY=+3SA"
start = 2026-01-01T06:00:00
duration = "12h"
"""


def policy(*freezes: str) -> Policy:
    return parse_policy(POLICY_TOML + "".join(freezes), "policy.toml")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def spans(policy: Policy, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    return [(one.start, one.end) for one in in_force(policy.freeze, start, end, ("api",))]


def test_a_weekly_freeze_keeps_its_wall_clock_times_across_both_daylight_saving_changes() -> None:
    weekend = policy(WEEKEND)
    # Berlin: summer time from Sunday 29 March 2026, winter time from Sunday 25 October.
    march = spans(weekend, utc(2026, 3, 24), utc(2026, 4, 4))
    october = spans(weekend, utc(2026, 10, 20), utc(2026, 10, 31))
    assert march == [
        (utc(2026, 3, 27, 15), utc(2026, 3, 30, 6)),  # 16:00 CET to 08:00 CEST: 63 h
        (utc(2026, 4, 3, 14), utc(2026, 4, 6, 6)),  # 16:00 to 08:00 CEST
    ]
    assert october == [
        (utc(2026, 10, 23, 14), utc(2026, 10, 26, 7)),  # 16:00 CEST to 08:00 CET: 65 h
        (utc(2026, 10, 30, 15), utc(2026, 11, 2, 7)),  # 16:00 to 08:00 CET
    ]


def test_a_freeze_begun_before_the_time_asked_about_is_still_in_force() -> None:
    weekend = policy(WEEKEND)
    sunday_noon = utc(2026, 12, 6, 12)
    assert spans(weekend, sunday_noon, sunday_noon + timedelta(hours=1)) == [
        (utc(2026, 12, 4, 15), utc(2026, 12, 7, 7))
    ]
    tuesday = utc(2026, 12, 8, 12)
    assert spans(weekend, tuesday, tuesday + timedelta(hours=1)) == []


def test_the_third_saturday_of_every_month() -> None:
    found = spans(policy(THIRD_SATURDAY), utc(2026, 1, 1), utc(2026, 4, 1))
    assert [start.day for start, _ in found] == [17, 21, 21]
    assert all(end - start == timedelta(hours=12) for start, end in found)


def test_a_time_skipped_by_the_clock_going_forward_still_opens_the_window() -> None:
    at_two = WEEKEND.replace("BYDAY=FR", "BYDAY=SU").replace("T16:00:00", "T02:30:00")
    found = spans(policy(at_two), utc(2026, 3, 28), utc(2026, 3, 30))
    # 02:30 does not exist in Berlin on 29 March 2026: the window opens when the clock jumps.
    assert found and found[0][0] == utc(2026, 3, 29, 1, 30)


def test_a_one_off_freeze_in_its_own_time_zone_covers_only_its_services() -> None:
    year_end = policy(YEAR_END)
    christmas = (utc(2026, 12, 24, 15), utc(2026, 12, 24, 16))
    (one,) = in_force(year_end.freeze, *christmas, ("checkout", "api"))
    assert (one.start, one.end) == (utc(2026, 12, 18, 5), utc(2027, 1, 4, 5))
    assert in_force(year_end.freeze, *christmas, ("search",)) == []
    before = (utc(2026, 12, 18, 4), utc(2026, 12, 18, 5))  # ends the instant it starts
    assert in_force(year_end.freeze, *before, ("checkout",)) == []


def test_an_until_in_utc_ends_a_freeze_in_a_time_zone_at_that_instant() -> None:
    # RFC 5545: with a start in a time zone, UNTIL is written in UTC. Friday 16 January 2026,
    # 16:00 in Berlin, is 15:00 UTC.
    def fridays(until: str) -> list[int]:
        ending = policy(WEEKEND.replace("BYDAY=FR", f"BYDAY=FR;UNTIL={until}"))
        return [start.day for start, _ in spans(ending, utc(2026, 1, 1), utc(2026, 3, 1))]

    assert fridays("20260116T150000Z") == [2, 9, 16]
    assert fridays("20260116T145959Z") == [2, 9]
    # Without the Z it is a wall-clock time in the freeze's zone, as its start is.
    assert fridays("20260116T160000") == [2, 9, 16]
    assert fridays("20260116T155959") == [2, 9]
    assert fridays("20260116") == [2, 9]  # a date is its midnight there


def test_a_weekly_freeze_in_a_time_zone_until_a_utc_time_starts_up() -> None:
    weekly = WEEKEND.replace("FREQ=WEEKLY;BYDAY=FR", "FREQ=WEEKLY;UNTIL=20270301T000000Z")
    (freeze,) = policy(weekly.replace("2026-01-02T16:00:00", "2027-01-04T09:00:00")).freeze
    found = freeze.next_occurrences(utc(2027, 2, 1), 10)
    assert [one.start for one in found] == [
        utc(2027, 2, day, 8) for day in (1, 8, 15, 22)
    ]  # 09:00 in Berlin, the last Monday before 1 March


@pytest.mark.parametrize(
    ("classification", "frozen_by"),
    [
        (Classification.NORMAL, ["Weekend", "Year end"]),
        (Classification.STANDARD, ["Weekend", "Year end"]),
        # Only a freeze that allows emergencies lets one through.
        (Classification.EMERGENCY, ["Year end"]),
    ],
)
def test_what_each_freeze_allows(classification: Classification, frozen_by: list[str]) -> None:
    both = policy(WEEKEND, YEAR_END)
    saturday = utc(2026, 12, 19, 10)
    found = blocking(
        both.freeze, saturday, saturday + timedelta(hours=1), ("checkout",), classification
    )
    assert sorted(one.freeze.name for one in found) == frozen_by


def test_next_occurrences_are_listed_in_order_and_a_one_off_ends() -> None:
    both = policy(WEEKEND, YEAR_END)
    weekend, year_end = both.freeze
    now = utc(2026, 12, 5, 12)
    assert [one.start for one in weekend.next_occurrences(now, 3)] == [
        utc(2026, 12, 4, 15),  # in force now
        utc(2026, 12, 11, 15),
        utc(2026, 12, 18, 15),
    ]
    assert len(year_end.next_occurrences(now, 3)) == 1
    assert year_end.next_occurrences(utc(2027, 2, 1), 3) == []
    # Planned well ahead: more than a month off is still to come.
    assert len(year_end.next_occurrences(utc(2025, 10, 1), 3)) == 1


@pytest.mark.parametrize(
    ("freeze", "key", "words"),
    [
        (WEEKEND.replace("Europe/Berlin", "Mars/Olympus"), "freeze.0.timezone", "IANA name"),
        (
            WEEKEND.replace("FREQ=WEEKLY;BYDAY=FR", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
            "freeze.0.rrule",
            "never occurs",
        ),
        (WEEKEND.replace("FREQ=WEEKLY", "FREQ=SOMETIMES"), "freeze.0.rrule", "RFC 5545"),
        # Every minute since 2026 would be walked at each look at the calendar.
        (WEEKEND.replace("FREQ=WEEKLY;BYDAY=FR", "FREQ=MINUTELY"), "freeze.0.rrule", "daily"),
        (WEEKEND.replace("FREQ=WEEKLY;BYDAY=FR", "FREQ=HOURLY"), "freeze.0.rrule", "daily"),
        # Daily, but at every hour and minute of the day: 1,440 occurrences a day.
        (
            WEEKEND.replace(
                "FREQ=WEEKLY;BYDAY=FR",
                "FREQ=DAILY;BYHOUR=" + ",".join(map(str, range(24))) + ";BYMINUTE=0,30",
            ),
            "freeze.0.rrule",
            "BYHOUR names several",
        ),
        # dateutil walks INTERVAL=0 for ever, and fails each lookup on a negative one.
        (WEEKEND.replace("BYDAY=FR", "BYDAY=FR;INTERVAL=0"), "freeze.0.rrule", "from 1"),
        (WEEKEND.replace("BYDAY=FR", "BYDAY=FR;INTERVAL=-1"), "freeze.0.rrule", "from 1"),
        # "Until further notice": the calendar feed counted days past the last date there is.
        (YEAR_END.replace("end = 2027-01-04", "end = 9999-12-31"), "freeze.0.end", "real end"),
        # Its own end comes before its start: it never occurs, whatever the horizon.
        (
            WEEKEND.replace("BYDAY=FR", "BYDAY=FR;UNTIL=20260101T000000"),
            "freeze.0.rrule",
            "never occurs after its start",
        ),
        (
            WEEKEND.replace("BYDAY=FR", "BYDAY=FR;UNTIL=2027-03-01T00:00:00+01:00"),
            "freeze.0.rrule",
            "UNTIL=20270301T000000Z (in UTC)",
        ),
        (
            WEEKEND.replace("BYDAY=FR", "BYDAY=FR;UNTIL=20270301T0000Z"),
            "freeze.0.rrule",
            "UNTIL=20270301T000000Z (in UTC)",
        ),
        # The freeze's own start and timezone say when and where: no DTSTART of the rule's own.
        (
            WEEKEND.replace(
                '"FREQ=WEEKLY;BYDAY=FR"',
                '"DTSTART;TZID=Europe/Berlin:20260102T160000\\nRRULE:FREQ=WEEKLY;UNTIL=20270301"',
            ),
            "freeze.0.rrule",
            "start and timezone",
        ),
        (WEEKEND.replace('duration = "64h"', ""), "freeze.0.duration", "how long"),
        (WEEKEND.replace('duration = "64h"', 'duration = "0s"'), "freeze.0.duration", "zero"),
        (YEAR_END.replace("end = 2027-01-04", "end = 2026-12-01"), "freeze.0.end", "not after"),
        (YEAR_END.replace("end = 2027-01-04", ""), "freeze.0.end", "start and an end"),
        (
            YEAR_END.replace("start = 2026-12-18", "start = 2026-12-18T09:00:00Z"),
            "freeze.0.start",
            "offset",
        ),
        (
            YEAR_END.replace('allows = "none"', 'allows = "standard"'),
            "freeze.0.allows",
            "emergency",
        ),
        (YEAR_END + YEAR_END, "freeze[1].name", "appears twice"),
    ],
)
def test_a_malformed_freeze_names_the_key_and_the_fix(freeze: str, key: str, words: str) -> None:
    with pytest.raises(PolicyError) as raised:
        policy(freeze)
    message = str(raised.value)
    assert "policy.toml" in message and f" {key}: " in message and words in message, message


# -- enforced: on the request, and at the gate -------------------------------------------------

#: Over the window of tests.unit.builders' changes (tomorrow 09:00-10:00 UTC), on the api.
MAINTENANCE = """
[[freeze]]
name = "Database maintenance"
reason = "The primary is being failed over."
services = ["api"]
start = 2026-11-24T08:30:00
end = 2026-11-24T09:30:00
"""


def frozen_desk(desk: Desk, *freezes: str) -> Desk:
    return replace(desk, policy=policy(*freezes))


def test_a_normal_change_into_a_freeze_is_refused_on_the_window_naming_it(desk: Desk) -> None:
    with pytest.raises(ValidationFailed) as refused:
        frozen_desk(desk, MAINTENANCE).request(normal_details())
    assert refused.value.problems == (
        (
            "window",
            "The freeze “Database maintenance” (The primary is being failed over) is in force "
            "until 2026-11-24 09:30 UTC; choose a window outside it (only an emergency change "
            "may go ahead in it).",
        ),
    )


def test_the_freeze_is_reported_with_every_other_problem_of_the_form(desk: Desk) -> None:
    with pytest.raises(ValidationFailed) as refused:
        frozen_desk(desk, MAINTENANCE).request(normal_details(title=" "))
    assert [field for field, _ in refused.value.problems] == ["title", "window"]


def test_a_window_clear_of_the_freeze_or_on_another_service_is_accepted(desk: Desk) -> None:
    frozen = frozen_desk(desk, MAINTENANCE)
    later = Window(TOMORROW.start + timedelta(hours=1), TOMORROW.end + timedelta(hours=1))
    assert frozen.request(normal_details(window=later)).stage is Stage.REVIEW
    assert frozen.request(normal_details(services=("search",))).stage is Stage.REVIEW


def test_an_emergency_may_go_ahead_in_a_freeze_that_allows_emergencies_only(desk: Desk) -> None:
    frozen = frozen_desk(desk, MAINTENANCE)
    assert frozen.request(emergency_details(window=TOMORROW, services=("api",))).number
    closed = frozen_desk(desk, MAINTENANCE.replace("[[freeze]]", '[[freeze]]\nallows = "none"'))
    with pytest.raises(ValidationFailed) as refused:
        closed.request(emergency_details(window=TOMORROW, services=("api",)))
    assert refused.value.field == "window" and refused.value.reason.endswith("outside it.")


def gate_now(desk: Desk, change: Change) -> Decision:
    """What the gate answers a deployment of the change to the api now."""
    stored = desk.stored(change)
    return decide(stored, stored.ref, Target("api", "production"), desk.policy, desk.clock.now())


def test_an_approved_change_is_held_at_the_gate_while_a_freeze_added_later_lasts(
    desk: Desk,
) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)  # approved before any freeze
    frozen = frozen_desk(desk, MAINTENANCE)
    frozen.clock.current = TOMORROW.start + timedelta(minutes=5)

    held = gate_now(frozen, change)
    assert held.status is GateStatus.AWAITING
    assert held.recheck_at == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert "“Database maintenance”" in held.reasons[0] and "09:30 UTC" in held.reasons[0]

    frozen.clock.current = held.recheck_at
    allowed = gate_now(frozen, change)
    assert allowed.status is GateStatus.ALLOWED


def test_a_freeze_that_outlasts_the_window_prevents_the_deployment(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    longer = MAINTENANCE.replace("T09:30:00", "T11:00:00")
    frozen = frozen_desk(desk, longer)
    frozen.clock.current = TOMORROW.start + timedelta(minutes=5)

    decision = gate_now(frozen, change)
    assert decision.status is GateStatus.PREVENTED
    assert "past the end of its window" in decision.reasons[0]


def test_an_emergency_in_a_freeze_goes_ahead_on_the_record_and_says_so(desk: Desk) -> None:
    frozen = frozen_desk(desk, MAINTENANCE)
    frozen.clock.current = TOMORROW.start + timedelta(minutes=5)  # during the freeze
    change = frozen.request(emergency_details(services=("api",)))
    requested = frozen.last_entry(change, "requested").entry
    assert requested.details["freezes"] == ["Database maintenance"]
    shown = standing(frozen.stored(change), frozen.policy, frozen.clock.now())
    assert [one.freeze.name for one in shown.freezes] == ["Database maintenance"]
    assert shown.frozen == ()
    # Outside any freeze, nothing is recorded.
    frozen.clock.current = TOMORROW.end
    calm = frozen.request(emergency_details(services=("api",)))
    assert "freezes" not in frozen.last_entry(calm, "requested").entry.details


def test_a_change_approved_before_a_freeze_was_added_stands_frozen(desk: Desk) -> None:
    change = desk.normal_change_in(Stage.DEPLOY)
    frozen = frozen_desk(desk, MAINTENANCE)
    shown = standing(frozen.stored(change), frozen.policy, frozen.clock.now())
    assert [one.freeze.name for one in shown.frozen] == ["Database maintenance"]
    assert standing(frozen.stored(change), desk.policy, desk.clock.now()).freezes == ()


def test_a_refusal_for_a_freeze_is_on_the_record_and_no_other_refusal_is(desk: Desk) -> None:
    frozen = frozen_desk(desk, MAINTENANCE)
    with pytest.raises(ValidationFailed):
        frozen.request(normal_details(title=" Failover prep "))
    (refused,) = [e.entry for e in frozen.uow.audit.events]
    assert (refused.action, refused.ref, refused.actor) == ("freeze_refused", "FREEZE", "UALICE")
    assert refused.details["freezes"] == ["Database maintenance"]
    assert refused.details["title"] == "Failover prep"
    assert refused.details["window_start"] == TOMORROW.start.isoformat()

    later = Window(TOMORROW.start + timedelta(hours=2), TOMORROW.end + timedelta(hours=2))
    with pytest.raises(ValidationFailed):
        frozen.request(normal_details(title=" ", window=later))  # not a freeze: not recorded
    assert len(frozen.uow.audit.events) == 1


def test_an_edit_naming_a_frozen_service_is_refused_on_the_record(desk: Desk) -> None:
    """The window stays where it was; the change now lands on what the freeze covers."""
    frozen = frozen_desk(desk, MAINTENANCE)
    change = frozen.request(normal_details(services=("billing",)))
    with pytest.raises(ValidationFailed) as refused:
        frozen.edit(change, services=("billing", "api"))
    assert refused.value.field == "window"
    assert frozen.stored(change).details.services == ("billing",)
    assert frozen.uow.audit.events[-1].entry.action == "freeze_refused"


def test_an_emergency_in_a_freeze_made_normal_is_refused(desk: Desk) -> None:
    """The freeze let the emergency through (it allows emergencies); a Normal change it
    refuses, whether requested so or made so."""
    frozen = frozen_desk(desk, MAINTENANCE)
    change = frozen.request(emergency_details(window=TOMORROW, services=("api",)))
    with pytest.raises(ValidationFailed) as refused:
        frozen.edit(change, classification=Classification.NORMAL)
    assert "Database maintenance" in dict(refused.value.problems)["window"]
    assert frozen.stored(change).classification is Classification.EMERGENCY


def test_an_edit_moving_a_window_into_a_freeze_is_refused_on_the_record(desk: Desk) -> None:
    later = Window(TOMORROW.start + timedelta(hours=2), TOMORROW.end + timedelta(hours=2))
    frozen = frozen_desk(desk, MAINTENANCE)
    change = frozen.request(normal_details(window=later))
    with pytest.raises(ValidationFailed) as refused:
        frozen.edit(change, window=TOMORROW)
    assert refused.value.field == "window"
    assert frozen.stored(change).details.window == later
    last = frozen.uow.audit.events[-1].entry
    assert (last.action, last.ref, last.details["freezes"]) == (
        "freeze_refused",
        change.ref,
        ["Database maintenance"],
    )
