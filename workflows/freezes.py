"""Freeze windows: when changes may not be deployed, as the policy's `[[freeze]]` tables say.

A freeze is either one-off (`start` and `end`) or recurring (an RFC 5545 `rrule` from `start`,
each occurrence lasting `duration`), in its own time zone. Times are read as wall-clock times
there: "every Friday 16:00 for 64 hours, Europe/Berlin" starts at 16:00 in Berlin in summer and
in winter alike, and ends on Monday at 08:00, so a daylight-saving change neither shifts nor drops
a window. A time that does not exist on the clock (skipped when clocks go forward) is read as
the same time before the change, which is the instant the clock jumped over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule as RRule
from dateutil.rrule import rrulestr
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from workflows.durations import Duration
from workflows.model import Classification, Window

#: A moment as a span: what is in force at `now` is what overlaps [now, now + INSTANT).
INSTANT = timedelta(microseconds=1)

#: How far ahead a recurring freeze must occur at least once to be believed.
HORIZON = timedelta(days=3 * 366)


class Allows(StrEnum):
    """What may still be deployed during the freeze."""

    EMERGENCY = "emergency"  # only emergency changes (the default)
    NONE = "none"


def _local(value: Any) -> datetime:
    """TOML's local date-time or date (a date means its midnight)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(
                "write a local time without an offset (2026-12-18T18:00:00); the freeze's "
                "timezone says where"
            )
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(0))
    raise ValueError("write a date (2026-12-18) or a local date and time (2026-12-18T18:00:00)")


LocalTime = Annotated[datetime, BeforeValidator(_local)]


#: No freeze ends in or after this year: a calendar of it would run past the last date.
LAST_YEAR = 3000


class _UntilUnreadable(ValueError):
    """An RRULE's UNTIL in none of the forms RFC 5545 gives it."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class Freeze(BaseModel):
    """One `[[freeze]]` table of the policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=500)
    #: The services it covers; none named means every change.
    services: tuple[str, ...] = ()
    allows: Allows = Allows.EMERGENCY
    timezone: str = "UTC"
    start: LocalTime
    end: LocalTime | None = None
    rrule: str = ""
    duration: Duration | None = None

    @model_validator(mode="after")
    def _check(self) -> Freeze:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone: {self.timezone!r} is not a time zone; write an IANA name such as "
                '"Europe/Berlin" or "UTC"'
            ) from None
        if self.rrule:
            if self.end is not None or self.duration is None:
                raise ValueError(
                    "duration: a recurring freeze (rrule) says how long each occurrence lasts "
                    'with duration (for example "64h") and has no end'
                )
            if self.duration <= timedelta(0):
                raise ValueError("duration: must be longer than zero")
            parts = self._parts()
            often = [p for p in ("BYHOUR", "BYMINUTE", "BYSECOND") if "," in parts.get(p, "")]
            if parts.get("FREQ") in ("HOURLY", "MINUTELY", "SECONDLY") or often:
                several = f" ({often[0]} names several)" if often else ""
                raise ValueError(
                    f"rrule: {self.rrule!r} recurs more often than daily{several}; a freeze "
                    "recurs daily at most (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY, at one time "
                    "of day)"
                )
            interval = parts.get("INTERVAL", "1")
            if not (interval.isascii() and interval.isdigit() and int(interval) >= 1):
                # dateutil would loop for ever on 0, and fail on every lookup on less.
                raise ValueError(
                    f"rrule: INTERVAL={interval} in {self.rrule!r}; an interval is a whole "
                    "number from 1 (INTERVAL=2 with FREQ=WEEKLY: every other week)"
                )
            if "\n" in self._text() or "DTSTART" in self._text().upper():
                raise ValueError(
                    f"rrule: {self.rrule!r} is more than an RRULE; write its parts alone (for "
                    'example "FREQ=WEEKLY;BYDAY=FR"): the freeze\'s start and timezone say when '
                    "and where it starts, not a DTSTART or TZID of its own"
                )
            try:
                rule = self._rule()
            except _UntilUnreadable as error:
                raise ValueError(
                    f"rrule: UNTIL={error.value} in {self.rrule!r} is not a date or time as "
                    "RFC 5545 writes them; write UNTIL=20270301T000000Z (in UTC), "
                    "UNTIL=20270301T000000 (on the clock of the freeze's timezone) or "
                    "UNTIL=20270301 (its midnight there)"
                ) from None
            except (ValueError, TypeError) as error:
                raise ValueError(
                    f"rrule: {self.rrule!r} is not an RFC 5545 RRULE ({error}); for example "
                    '"FREQ=WEEKLY;BYDAY=FR" or "FREQ=MONTHLY;BYDAY=+3SA"'
                ) from None
            # A rule that ends by itself (UNTIL or COUNT) is looked at as it is; one that does
            # not, over the horizon.
            ends = "UNTIL" in parts or "COUNT" in parts
            bounded = rule if ends else rule.replace(until=self.start + HORIZON)
            if bounded.after(self.start, inc=True) is None:
                when = "" if ends else f" in the {HORIZON.days // 366} years"
                raise ValueError(
                    f"rrule: {self.rrule!r} never occurs{when} after its start; check its "
                    "BYMONTH, BYMONTHDAY and BYDAY, and its UNTIL or COUNT"
                )
        else:
            if self.end is None or self.duration is not None:
                raise ValueError(
                    "end: a one-off freeze has a start and an end (a recurring one has an "
                    "rrule and a duration)"
                )
            if self.end <= self.start:
                raise ValueError(f"end: {self.end} is not after its start {self.start}")
            if self.end.year >= LAST_YEAR:
                # Calendars count days past it (the feed's time zones): year 9999 overflows.
                raise ValueError(
                    f"end: {self.end:%Y-%m-%d} is no date a freeze ends by; a freeze until "
                    "further notice is ended by editing the policy: give it a real end"
                )
        return self

    def _text(self) -> str:
        """The rule's parts, without the "RRULE:" a calendar writes before them."""
        text = self.rrule.strip()
        return text[len("RRULE:") :] if text.upper().startswith("RRULE:") else text

    def _parts(self) -> dict[str, str]:
        """The rule's parts as written (dateutil keeps its own private): {"FREQ": "WEEKLY"}."""
        return dict(p.split("=", 1) for p in self._text().upper().split(";") if "=" in p)

    def _rule(self) -> RRule:
        # The rule recurs on the freeze's wall clock (a start without a zone), so its UNTIL is
        # read here and given to it on that clock: dateutil refuses a UTC one beside such a start.
        rest = [p for p in self._text().split(";") if p.split("=", 1)[0].upper() != "UNTIL"]
        rule = rrulestr(";".join(rest), dtstart=self.start)
        if not isinstance(rule, RRule):
            raise ValueError("one rule, not a set")
        until = self._parts().get("UNTIL")
        return rule if until is None else rule.replace(until=self._until(until))

    def _until(self, value: str) -> datetime:
        """UNTIL on the freeze's wall clock: RFC 5545 writes it in UTC beside a start in a
        time zone (20270301T000000Z); one without the Z is read as the start is."""
        written = re.fullmatch(r"(\d{4})(\d\d)(\d\d)(?:T(\d\d)(\d\d)(\d\d)(Z?))?", value)
        if written is None:
            raise _UntilUnreadable(value)
        *numbers, utc = written.groups(default="0")
        year, month, day, hour, minute, second = (int(n) for n in numbers)
        try:
            found = datetime(year, month, day, hour, minute, second)
            if utc == "Z":
                found = found.replace(tzinfo=UTC).astimezone(self.zone).replace(tzinfo=None)
        except (ValueError, OverflowError):  # no such day or time (20270230), or past year 9999
            raise _UntilUnreadable(value) from None
        return found

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def covers(self, services: tuple[str, ...]) -> bool:
        """Whether the freeze applies to a change on these services."""
        if not self.services:
            return True
        named = {s.lower() for s in self.services}
        return any(s.lower() in named for s in services)

    def allows_class(self, classification: Classification) -> bool:
        return self.allows is Allows.EMERGENCY and classification is Classification.EMERGENCY

    def occurrences(self, start: datetime, end: datetime) -> list[Occurrence]:
        """The occurrences that overlap [start, end), in order (times in UTC)."""
        if not self.rrule:
            assert self.end is not None
            one = Occurrence(self, self._utc(self.start), self._utc(self.end))
            return [one] if one.overlaps(start, end) else []
        assert self.duration is not None
        # Local starts from a day and a duration before `start` (an occurrence begun earlier
        # may still be running), to a day after `end` (time-zone offsets).
        zone_slack = timedelta(days=1)
        since = (start.astimezone(self.zone).replace(tzinfo=None)) - self.duration - zone_slack
        until = end.astimezone(self.zone).replace(tzinfo=None) + zone_slack
        found = []
        for local in self._rule().between(max(since, self.start), until, inc=True):
            one = Occurrence(self, self._utc(local), self._utc(local + self.duration))
            if one.overlaps(start, end):
                found.append(one)
        return found

    def next_occurrences(self, now: datetime, count: int) -> list[Occurrence]:
        """The next `count` occurrences running at or after `now` (fewer if it ends)."""
        if not self.rrule:  # one occurrence, however far off: there or not
            return self.occurrences(now, now + HORIZON)[:count]
        found: list[Occurrence] = []
        step = timedelta(days=31)
        since = now
        while len(found) < count and since < now + HORIZON:
            for one in self.occurrences(since, since + step):
                if one not in found:
                    found.append(one)
            since += step
        return found[:count]

    def _utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True)
class Occurrence:
    """One freeze in force from `start` to `end` (UTC)."""

    freeze: Freeze
    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


def in_force(
    freezes: tuple[Freeze, ...], start: datetime, end: datetime, services: tuple[str, ...]
) -> list[Occurrence]:
    """The freeze occurrences over [start, end) that cover a change on `services`."""
    found = [
        one
        for freeze in freezes
        if freeze.covers(services)
        for one in freeze.occurrences(start, end)
    ]
    return sorted(found, key=lambda one: one.start)


def blocking(
    freezes: tuple[Freeze, ...],
    start: datetime,
    end: datetime,
    services: tuple[str, ...],
    classification: Classification,
) -> list[Occurrence]:
    """The occurrences that forbid this change in that window (an emergency may go ahead in a
    freeze that allows emergencies)."""
    return [
        one
        for one in in_force(freezes, start, end, services)
        if not one.freeze.allows_class(classification)
    ]


def described(one: Occurrence) -> str:
    """The freeze as a refusal names it: its name, its reason and when this occurrence ends."""
    return (
        f"the freeze “{one.freeze.name}” ({one.freeze.reason.rstrip('.')}) is in force until "
        f"{one.end:%Y-%m-%d %H:%M} UTC"
    )


def over_change(
    freezes: tuple[Freeze, ...], window: Window | None, services: tuple[str, ...], now: datetime
) -> list[Occurrence]:
    """The freezes that concern a change: over its window, or in force now if it has none
    (an emergency declared in one line deploys now)."""
    start, end = (window.start, window.end) if window is not None else (now, now + INSTANT)
    return in_force(freezes, start, end, services)
