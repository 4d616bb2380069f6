from __future__ import annotations

from datetime import timedelta

import pytest

from workflows.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("48h", timedelta(hours=48)),
        ("30m", timedelta(minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("10s", timedelta(seconds=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        (" 2D ", timedelta(days=2)),
        ("0h15m", timedelta(minutes=15)),
    ],
)
def test_durations_are_read_as_people_write_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "48", "h", "1.5h", "-1h", "2x", "48 hours", "h48"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r'is not a duration: .* for example "48h"'):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0s", "0h0m"])
def test_a_duration_of_nothing_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is zero"):
        parse_duration(text)


def test_a_duration_too_long_to_represent_is_refused_as_a_value_error() -> None:
    with pytest.raises(ValueError, match="too long a duration"):
        parse_duration("9999999999d")


def test_a_duration_longer_than_ten_years_is_refused() -> None:
    assert parse_duration("520w") == timedelta(weeks=520)
    with pytest.raises(ValueError, match="at most 10 years"):
        parse_duration("99999999w")  # a date this far on is past the calendar's end


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=2), "2d"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(seconds=10), "10s"),
        (timedelta(days=1, hours=1, minutes=1, seconds=1), "1d1h1m1s"),
        (timedelta(weeks=1), "7d"),
        (timedelta(), "0s"),
        (timedelta(seconds=-5), "0s"),
    ],
)
def test_durations_are_written_in_their_shortest_form(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize("text", ["48h", "1h30m", "10s", "3d4h5m6s"])
def test_a_written_duration_reads_back_the_same(text: str) -> None:
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
