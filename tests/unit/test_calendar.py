"""The change calendar as people read it: the span words, days cut at the reader's own
midnight (23 or 25 hours long when the clocks change), and the changes and freezes on each
day they touch. A fixed clock throughout."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.unit.builders import POLICY_TOML, WEEKEND, a_booking, utc
from workflows.calendar import (
    Span,
    agenda,
    days_of,
    midnight,
    span,
    zone_named,
)
from workflows.errors import ValidationFailed
from workflows.model import Window
from workflows.policy import parse_policy

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def hours(window: Window) -> float:
    return (window.end - window.start) / timedelta(hours=1)


# -- the span words -----------------------------------------------------------------------------

# Wednesday 21 October 2026, 23:30 in Berlin (21:30 UTC): already Thursday in Tokyo.
WEDNESDAY_NIGHT = utc(2026, 10, 21, 21, 30)


def test_week_is_the_default_today_and_the_next_six_days() -> None:
    week = span("", WEDNESDAY_NIGHT, BERLIN)
    assert week == span("week", WEDNESDAY_NIGHT, BERLIN)
    assert (week.first, week.last, week.count) == (date(2026, 10, 21), date(2026, 10, 27), 7)


def test_today_is_the_readers_today_not_utcs() -> None:
    assert span("today", WEDNESDAY_NIGHT, BERLIN).days == (date(2026, 10, 21),)
    assert span("today", WEDNESDAY_NIGHT, ZoneInfo("Asia/Tokyo")).days == (date(2026, 10, 22),)
    today = span("today", WEDNESDAY_NIGHT, BERLIN).window
    assert today == Window(utc(2026, 10, 20, 22), utc(2026, 10, 21, 22))


def test_next_week_is_the_next_monday_to_sunday() -> None:
    nxt = span("next week", WEDNESDAY_NIGHT, BERLIN)
    assert (nxt.first, nxt.last) == (date(2026, 10, 26), date(2026, 11, 1))
    assert [d.weekday() for d in nxt.days] == [0, 1, 2, 3, 4, 5, 6]
    # On a Monday, next week is the Monday after, not today.
    monday = utc(2026, 10, 26, 9)
    assert span("next week", monday, BERLIN).first == date(2026, 11, 2)


def test_month_is_today_and_the_next_29_days() -> None:
    month = span("month", WEDNESDAY_NIGHT, BERLIN)
    assert (month.first, month.last, month.count) == (date(2026, 10, 21), date(2026, 11, 19), 30)


def test_span_words_are_read_whatever_their_case_and_spacing() -> None:
    assert span("  Next   WEEK ", WEDNESDAY_NIGHT, BERLIN).word == "next week"


def test_an_unknown_span_word_is_refused_naming_the_words_understood() -> None:
    with pytest.raises(ValidationFailed) as refused:
        span("fortnight", WEDNESDAY_NIGHT, BERLIN)
    message = str(refused.value)
    assert "fortnight" in message
    for word in ("`today`", "`week`", "`next week`", "`month`"):
        assert word in message


# -- days cut at local midnight -----------------------------------------------------------------


def test_the_day_the_clocks_go_back_in_berlin_has_25_hours() -> None:
    # Sunday 25 October 2026: 03:00 CEST becomes 02:00 CET.
    week = span("week", WEDNESDAY_NIGHT, BERLIN)
    days = agenda(week, [], []).days
    lengths = {d.day: hours(d.window) for d in days}
    assert lengths[date(2026, 10, 25)] == 25
    assert all(n == 24 for day, n in lengths.items() if day != date(2026, 10, 25))
    assert days[4].window == Window(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))
    assert hours(week.window) == 7 * 24 + 1


def test_the_day_the_clocks_go_back_in_new_york_has_25_hours_and_spring_has_23() -> None:
    # Sunday 1 November 2026 (back), Sunday 8 March 2026 (forward).
    november = agenda(span("week", utc(2026, 10, 30, 16), NEW_YORK), [], []).days
    assert {d.day: hours(d.window) for d in november}[date(2026, 11, 1)] == 25
    assert november[0].window.start == utc(2026, 10, 30, 4)  # midnight EDT
    assert november[-1].window.end == utc(2026, 11, 6, 5)  # midnight EST
    march = agenda(span("today", utc(2026, 3, 8, 12), NEW_YORK), [], []).days
    assert hours(march[0].window) == 23


def test_a_day_whose_midnight_is_skipped_starts_when_the_clock_jumps() -> None:
    # Santiago, Chile: on Sunday 6 September 2026 the clocks jump from 00:00 to 01:00.
    santiago = ZoneInfo("America/Santiago")
    start = midnight(date(2026, 9, 6), santiago)
    assert start.astimezone(santiago).hour == 1
    assert start - midnight(date(2026, 9, 5), santiago) == timedelta(hours=24)


def test_days_of_a_window_are_the_local_days_it_touches() -> None:
    window = Window(utc(2026, 10, 20, 22), utc(2026, 10, 27, 23))  # a Berlin week, DST inside
    assert days_of(window, BERLIN) == Span("", date(2026, 10, 21), 7, BERLIN)
    assert days_of(window, BERLIN).window == window


# -- changes and freezes on each day -------------------------------------------------------------


def test_a_change_spanning_midnight_shows_on_each_day_it_touches() -> None:
    week = span("week", WEDNESDAY_NIGHT, BERLIN)
    # Thursday 22:00 to Saturday 02:00 in Berlin.
    long = a_booking(1, utc(2026, 10, 22, 20), 28)
    days = {d.day: d for d in agenda(week, [long], []).days}
    shown = [day for day, d in days.items() if d.changes]
    assert shown == [date(2026, 10, 22), date(2026, 10, 23), date(2026, 10, 24)]
    thursday, friday, saturday = (days[d].changes[0] for d in shown)
    assert (thursday.from_before, thursday.goes_on) == (False, True)
    assert (friday.from_before, friday.goes_on) == (True, True)
    assert (saturday.from_before, saturday.goes_on) == (True, False)
    assert thursday.start.hour == 22 and thursday.start.tzinfo == BERLIN
    assert saturday.end.hour == 2


def test_a_change_at_half_past_one_on_the_long_night_is_on_sunday_not_saturday() -> None:
    week = span("week", WEDNESDAY_NIGHT, BERLIN)
    # 01:30 CEST on Sunday 25 October is 23:30 UTC on Saturday.
    early = a_booking(2, utc(2026, 10, 24, 23, 30), 0.5)
    # 01:30 UTC is 02:30 CET: the second 02:30 of that night.
    twice = a_booking(3, utc(2026, 10, 25, 1, 30), 0.5)
    days = {
        d.day: [e.booking.number for e in d.changes] for d in agenda(week, [early, twice], []).days
    }
    assert days[date(2026, 10, 24)] == []
    assert days[date(2026, 10, 25)] == [2, 3]


def test_a_change_that_ends_at_midnight_is_not_on_the_next_day() -> None:
    week = span("week", WEDNESDAY_NIGHT, BERLIN)
    evening = a_booking(4, utc(2026, 10, 21, 20), 2)  # 22:00 to midnight in Berlin
    days = {d.day: d.changes for d in agenda(week, [evening], []).days}
    assert [e.booking.number for e in days[date(2026, 10, 21)]] == [4]
    assert days[date(2026, 10, 22)] == ()
    assert days[date(2026, 10, 21)][0].goes_on is False


def test_changes_before_or_after_the_span_are_not_shown() -> None:
    today = span("today", WEDNESDAY_NIGHT, BERLIN)
    before = a_booking(5, utc(2026, 10, 20, 20), 2)  # ends at Berlin's midnight
    after = a_booking(6, utc(2026, 10, 21, 22), 1)  # starts at the next
    assert agenda(today, [before, after], []).empty


def test_a_days_changes_are_in_order_of_their_local_start() -> None:
    today = span("today", WEDNESDAY_NIGHT, BERLIN)
    late, early = a_booking(7, utc(2026, 10, 21, 15), 1), a_booking(8, utc(2026, 10, 21, 6), 1)
    (day,) = agenda(today, [late, early], []).days
    assert [e.booking.number for e in day.changes] == [8, 7]


def test_a_freeze_in_force_shows_on_each_day_with_its_local_end() -> None:
    policy = parse_policy(POLICY_TOML + WEEKEND, "policy.toml")
    week = span("week", WEDNESDAY_NIGHT, BERLIN)
    days = agenda(week, [], policy.freeze).days
    frozen = [d.day for d in days if d.freezes]
    # Friday 16:00 CEST to Monday 08:00 CET: four days, the Sunday being 25 hours long.
    assert frozen == [
        date(2026, 10, 23),
        date(2026, 10, 24),
        date(2026, 10, 25),
        date(2026, 10, 26),
    ]
    until = days[2].freezes[0].until
    assert until == datetime(2026, 10, 26, 8, tzinfo=BERLIN)
    assert until.utcoffset() == timedelta(hours=1)
    assert days[2].freezes[0].freeze.name == "Weekend"
    # It starts on Friday at 16:00 and was in force when each later day began.
    friday, saturday = days[2].freezes[0], days[3].freezes[0]
    assert (friday.from_before, friday.since.hour) == (False, 16)
    assert saturday.from_before is True


def test_a_freeze_is_read_in_the_readers_zone_too() -> None:
    policy = parse_policy(POLICY_TOML + WEEKEND, "policy.toml")
    # Friday 16:00 in Berlin is 10:00 in New York; Monday 08:00 CET is 03:00 EDT there.
    week = span("week", utc(2026, 10, 21, 12), NEW_YORK)
    days = agenda(week, [], policy.freeze).days
    assert [d.day for d in days if d.freezes] == [
        date(2026, 10, 23),
        date(2026, 10, 24),
        date(2026, 10, 25),
        date(2026, 10, 26),
    ]
    assert days[5].freezes[0].until.hour == 3


def test_the_agenda_lists_each_change_once_in_order_of_appearance() -> None:
    week = span("week", WEDNESDAY_NIGHT, BERLIN)
    bookings = [a_booking(9, utc(2026, 10, 22, 20), 28), a_booking(1, utc(2026, 10, 23, 8), 1)]
    assert agenda(week, bookings, []).numbers() == [9, 1]


def test_slack_time_zone_names_are_read_and_unknown_ones_are_none() -> None:
    assert zone_named("Europe/Berlin") == BERLIN
    assert zone_named("Mars/Olympus_Mons") is None
    assert zone_named("") is None
    assert zone_named(None) is None
