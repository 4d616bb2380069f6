"""The change calendar's rules: where each change sits in time, which changes collide, and
how a span of days is cut into the weeks the schedule is indexed by.

A change with a window is *booked* for it on each service it names, until it is cancelled.
While it may still be deployed (not closed, not cancelled, no outcome yet) it *occupies* its
window: two changes that occupy overlapping windows on a common service *conflict*. A
conflict warns; it never refuses (two teams may well agree to share an hour), but everyone
who decides sees it, and the policy may ask one more approval for it.

Storage finds the candidates through an index (the weeks a window touches, by service);
these rules decide which of them conflict, so the fakes and the database agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from workflows.model import Change, Classification, Stage, Window, format_ref

#: Week 0 starts on this Monday (UTC): a window is indexed under every week it touches.
EPOCH = datetime(1970, 1, 5, tzinfo=UTC)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Booking:
    """A change on the calendar: its window and the services it names."""

    number: int
    title: str
    classification: Classification
    stage: Stage
    services: tuple[str, ...]
    window: Window
    #: It may still be deployed in its window: it can conflict.
    occupies: bool

    @property
    def ref(self) -> str:
        return format_ref(self.number)


@dataclass(frozen=True)
class Conflict:
    """Another change in the same place at the same time."""

    other: Booking
    #: The services both name.
    services: tuple[str, ...]
    #: When both windows are open.
    overlap: Window


def occupies(change: Change) -> bool:
    """May the change still be deployed in its window?"""
    return (
        change.details.window is not None and not change.stage.is_final and change.outcome is None
    )


def booking(change: Change) -> Booking | None:
    """The change's place on the calendar, if it has one (a window, not cancelled)."""
    window = change.details.window
    if window is None or change.stage is Stage.CANCELLED:
        return None
    return Booking(
        number=change.number,
        title=change.title,
        classification=change.classification,
        stage=change.stage,
        services=tuple(dict.fromkeys(s.strip().lower() for s in change.details.services)),
        window=window,
        occupies=occupies(change),
    )


def overlap(a: Window, b: Window) -> Window | None:
    """When both windows are open (a window includes its start, not its end)."""
    start, end = max(a.start, b.start), min(a.end, b.end)
    return Window(start, end) if start < end else None


def conflicts(mine: Booking, found: Iterable[Booking]) -> tuple[Conflict, ...]:
    """Those of `found` that conflict with `mine`, earliest first: both occupy their
    windows, the windows overlap and they name a service in common."""
    if not mine.occupies:
        return ()
    named = set(mine.services)
    result = []
    for other in found:
        if other.number == mine.number or not other.occupies:
            continue
        common = tuple(s for s in other.services if s in named)
        when = overlap(mine.window, other.window)
        if common and when is not None:
            result.append(Conflict(other, common, when))
    return tuple(sorted(result, key=lambda c: (c.overlap.start, c.other.number)))


def weeks(window: Window) -> range:
    """The weeks (numbered from EPOCH) that `window` touches."""
    first = (window.start - EPOCH) // WEEK
    last = (window.end - timedelta(microseconds=1) - EPOCH) // WEEK
    return range(first, max(first, last) + 1)
