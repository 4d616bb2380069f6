"""The change calendar as people read it: a span of days in the reader's own time zone, and
the changes booked and the freezes in force on each of those days.

Days are cut at the reader's local midnight, so a day is 23 or 25 hours long when the clocks
change: a change at 01:30 on the night the clocks go back is on that day, not the day before.
A change whose window spans midnight shows on every day it touches, and so does a freeze.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workflows.errors import ValidationFailed
from workflows.freezes import Freeze, Occurrence
from workflows.model import Window
from workflows.schedule import Booking

#: The spans `/change calendar` understands, and how many days from today each covers
#: ("next week" is the next Monday to Sunday instead).
SPANS = ("today", "week", "next week", "month")
DEFAULT_SPAN = "week"
_DAYS = {"today": 1, "week": 7, "next week": 7, "month": 30}
#: App Home's calendar: the next seven days.
HOME_SPAN = "week"

UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class Span:
    """Whole local days, from `first` for `count` days, in `zone`."""

    word: str
    first: date
    count: int
    zone: ZoneInfo

    @property
    def last(self) -> date:
        return self.first + timedelta(days=self.count - 1)

    @property
    def days(self) -> tuple[date, ...]:
        return tuple(self.first + timedelta(days=n) for n in range(self.count))

    @property
    def window(self) -> Window:
        """From the first day's local midnight to the midnight after the last (UTC)."""
        return Window(midnight(self.first, self.zone), midnight(self.last, self.zone, after=True))


def span(word: str, now: datetime, zone: ZoneInfo) -> Span:
    """The span a person asked for, as whole days of their own calendar.

    `today` is today; `week` (the default) today and the next six days; `next week` the next
    Monday to Sunday; `month` today and the next 29 days. Anything else is refused, naming
    the words understood.
    """
    said = " ".join(word.lower().split()) or DEFAULT_SPAN
    if said not in _DAYS:
        accepted = ", ".join(f"`{one}`" for one in SPANS)
        raise ValidationFailed(
            "span", f"I don't know the span “{word.strip()}”: say {accepted} (week if none)."
        )
    today = now.astimezone(zone).date()
    first = today + timedelta(days=7 - today.weekday()) if said == "next week" else today
    return Span(said, first, _DAYS[said], zone)


def midnight(day: date, zone: ZoneInfo, *, after: bool = False) -> datetime:
    """The first instant of `day` in `zone` (of the day after, if `after`), in UTC.

    Computed from the local date, never by adding 24 hours, so a daylight-saving day keeps
    its 23 or 25 hours. Where midnight itself is skipped, the day starts when the clock
    jumps (zoneinfo reads a skipped time with the offset before the jump).
    """
    if after:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def zone_named(name: str | None) -> ZoneInfo | None:
    """The IANA time zone Slack says a person is in, or None if it says none we know."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class Entry:
    """A change on one day: its booking, and when it starts and ends in the reader's time."""

    booking: Booking
    start: datetime
    end: datetime
    #: It started on an earlier day / goes on past this day.
    from_before: bool
    goes_on: bool


@dataclass(frozen=True)
class FreezeEntry:
    """A freeze in force on one day, from `since` to `until` (the reader's time)."""

    occurrence: Occurrence
    since: datetime
    until: datetime
    #: It was in force before this day began.
    from_before: bool

    @property
    def freeze(self) -> Freeze:
        return self.occurrence.freeze


@dataclass(frozen=True)
class Day:
    """One local day of the calendar: the changes booked and the freezes in force."""

    day: date
    window: Window
    changes: tuple[Entry, ...]
    freezes: tuple[FreezeEntry, ...]

    @property
    def empty(self) -> bool:
        return not self.changes and not self.freezes


@dataclass(frozen=True)
class Agenda:
    """The calendar of a span, day by day (every day of it, empty ones too)."""

    span: Span
    days: tuple[Day, ...]

    @property
    def empty(self) -> bool:
        return all(day.empty for day in self.days)

    def numbers(self) -> list[int]:
        """The changes on the calendar, in the order they first appear."""
        return list(dict.fromkeys(e.booking.number for day in self.days for e in day.changes))


def days_of(window: Window, zone: ZoneInfo) -> Span:
    """The whole local days that `window` touches, in `zone` (for a window given in UTC)."""
    first = window.start.astimezone(zone).date()
    last = (window.end - timedelta(microseconds=1)).astimezone(zone).date()
    return Span("", first, max(1, (last - first).days + 1), zone)


def agenda(span: Span, bookings: Iterable[Booking], freezes: Iterable[Freeze]) -> Agenda:
    """The bookings and the freeze occurrences of `span`, on each local day they touch."""
    zone, window = span.zone, span.window
    days = span.days
    starts = [midnight(day, zone) for day in days]
    ends = [*starts[1:], window.end]
    # Compared in UTC: comparing times of two zones asks the local zone its offset each time.
    utc_starts = [start.astimezone(UTC) for start in starts]
    utc_ends = [*utc_starts[1:], window.end.astimezone(UTC)]
    changes: list[list[Entry]] = [[] for _ in days]
    for one in bookings:
        begins, finishes = one.window.start.astimezone(UTC), one.window.end.astimezone(UTC)
        local_start, local_end = begins.astimezone(zone), finishes.astimezone(zone)
        for index in _touched(utc_starts, utc_ends, begins, finishes):
            changes[index].append(
                Entry(
                    booking=one,
                    start=local_start,
                    end=local_end,
                    from_before=begins < utc_starts[index],
                    goes_on=finishes > utc_ends[index],
                )
            )
    occurrences = sorted(
        (o for freeze in freezes for o in freeze.occurrences(window.start, window.end)),
        key=lambda o: (o.start, o.freeze.name),
    )
    frozen: list[list[FreezeEntry]] = [[] for _ in days]
    for occurrence in occurrences:
        for index in _touched(starts, ends, occurrence.start, occurrence.end):
            frozen[index].append(
                FreezeEntry(
                    occurrence,
                    since=occurrence.start.astimezone(zone),
                    until=occurrence.end.astimezone(zone),
                    from_before=occurrence.start < starts[index],
                )
            )
    return Agenda(
        span,
        tuple(
            Day(
                day,
                Window(starts[i], ends[i]),
                tuple(sorted(changes[i], key=lambda e: (e.start, e.booking.number))),
                tuple(frozen[i]),
            )
            for i, day in enumerate(days)
        ),
    )


def _touched(starts: list[datetime], ends: list[datetime], start: datetime, end: datetime) -> range:
    """The indexes of the days [starts[i], ends[i]) that [start, end) overlaps."""
    first = max(0, bisect_right(starts, start) - 1)
    last = bisect_right(starts, end - timedelta(microseconds=1)) - 1
    if end <= starts[0] or start >= ends[-1]:
        return range(0)
    return range(first, min(last, len(starts) - 1) + 1)
