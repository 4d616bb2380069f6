"""The calendar feed's content: which events a subscribed calendar shows, and what each says.

The feed covers a fixed span around now (`PAST` back, `AHEAD` forward), so its size follows
the calendar's busy-ness, not its history. It has one event per change booked in the span (a
cancelled change is not booked: it leaves the feed, and subscribed calendars drop it at their
next refresh) and one per freeze occurrence that overlaps the span.

Changes are in UTC, as they are stored. A freeze keeps its own time zone, so a calendar app
shows "Friday 16:00 Europe/Berlin" at 16:00 in Berlin in summer and in winter alike.

Every event is transparent: the feed is a team's shared view of what is planned, subscribed
by many people. A 64-hour weekend freeze or another team's change window is not the
subscriber's own appointment, and must not mark them busy in their free/busy time (which a
meeting planner would read). The rendering into iCalendar is the adapter's (bot/).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from workflows.freezes import Allows, Freeze, Occurrence
from workflows.model import Stage, Window
from workflows.schedule import Booking

#: How far back and ahead of now the feed reaches.
PAST = timedelta(days=30)
AHEAD = timedelta(days=180)
#: The domain part of every event's UID: stable, so calendar apps update an event in place.
UID_DOMAIN = "changebot"

#: Stages in which a change is authorised to go ahead in its window.
_AUTHORISED = (Stage.DEPLOY, Stage.CLOSED)


class Status(StrEnum):
    """An event's STATUS (RFC 5545): a change not yet authorised is tentative."""

    TENTATIVE = "TENTATIVE"
    CONFIRMED = "CONFIRMED"


@dataclass(frozen=True)
class FeedEvent:
    """One event of the feed. `start` and `end` are aware, in the zone the event is shown in
    (UTC for changes, the freeze's own zone for freezes)."""

    uid: str
    summary: str
    description: str
    start: datetime
    end: datetime
    status: Status
    url: str = ""
    categories: tuple[str, ...] = ()
    #: Shown, but not busy time for whoever subscribes (see the module's docstring).
    transparent: bool = True


def span(now: datetime) -> Window:
    """The stretch of time the feed covers."""
    return Window(now - PAST, now + AHEAD)


def change_event(booking: Booking, link: str = "") -> FeedEvent:
    """A change's window, with its reference, title, class, stage, services and thread."""
    lines = [
        f"{booking.classification.label} change, stage: {booking.stage.label}.",
        f"Services: {', '.join(booking.services) if booking.services else 'none named'}.",
    ]
    if link:
        lines.append(f"Thread: {link}")
    status = Status.CONFIRMED if booking.stage in _AUTHORISED else Status.TENTATIVE
    return FeedEvent(
        uid=f"{booking.ref}@{UID_DOMAIN}",
        summary=f"{booking.ref} {booking.title}",
        description="\n".join(lines),
        start=booking.window.start,
        end=booking.window.end,
        status=status,
        url=link,
        categories=("Change", booking.classification.label),
    )


def freeze_event(one: Occurrence) -> FeedEvent:
    """A freeze occurrence, in the freeze's own time zone."""
    freeze = one.freeze
    start, end = one.start.astimezone(freeze.zone), one.end.astimezone(freeze.zone)
    covers = ", ".join(freeze.services) if freeze.services else "every service"
    allows = (
        "Only emergency changes may deploy."
        if freeze.allows is Allows.EMERGENCY
        else "No change may deploy."
    )
    return FeedEvent(
        uid=f"freeze-{_slug(freeze.name)}-{_name_hash(freeze.name)}-{start:%Y%m%dT%H%M}@{UID_DOMAIN}",
        summary=f"Freeze: {freeze.name}",
        description=f"{freeze.reason}\nCovers: {covers}.\n{allows}",
        start=start,
        end=end,
        status=Status.CONFIRMED,
        categories=("Freeze",),
    )


def feed(
    bookings: Iterable[Booking],
    links: Mapping[int, str],
    freezes: Iterable[Freeze],
    window: Window,
) -> list[FeedEvent]:
    """The feed's events over `window`: the changes booked in it (`links` gives each change's
    thread, where known) and the freeze occurrences that overlap it, in order of start."""
    events = [change_event(b, links.get(b.number, "")) for b in bookings]
    events += [
        freeze_event(one)
        for freeze in freezes
        for one in freeze.occurrences(window.start, window.end)
    ]
    return sorted(events, key=lambda e: (e.start, e.uid))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "freeze"


def _name_hash(name: str) -> str:
    """Eight hex digits of the exact name: names the slug makes alike ("Year end", "Year-end",
    or any two in a script other than Latin) still give events of their own."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
