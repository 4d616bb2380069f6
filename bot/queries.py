"""The read side: which changes a person sees in lists and on App Home."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage import outbox
from storage.repositories import SqlChanges
from workflows.calendar import Agenda, Span, agenda
from workflows.metrics import Dora, Trend, dora, measure, previous
from workflows.model import Actor, Change, Classification, Stage, Window
from workflows.policy import Policy
from workflows.schedule import Booking, Conflict
from workflows.stages import Action, allowed_actions

OPEN = (Stage.REQUEST, Stage.REVIEW, Stage.TEST, Stage.APPROVE, Stage.DEPLOY)

#: The changes of a calendar whose threads are looked up: more than one answer or App Home
#: can show (Slack's 50 blocks), so the lookup stays small however busy the month.
LINKED = 60


def change(session: Any, number: int) -> Change:
    """One change, or NotFound."""
    return SqlChanges(session).get(number)


def change_in_place(session: Any, number: int) -> tuple[Change, tuple[Conflict, ...]]:
    """One change and the open changes its window collides with, or NotFound."""
    changes = SqlChanges(session)
    found = changes.get(number)
    return found, changes.conflicts(found)


def conflicts(session: Any, change: Change) -> tuple[Conflict, ...]:
    """The open changes the change's window collides with."""
    return SqlChanges(session).conflicts(change)


def conflicts_of(session: Any, changes: Iterable[Change]) -> dict[int, tuple[Conflict, ...]]:
    """The conflicts of each change of a list that has any (storage: one read for the changes
    that share a window)."""
    return SqlChanges(session).conflicts_among(changes)


def metrics(session: Any, period: Window) -> Trend:
    """DORA's metrics of a period, the period before and each week, in one streamed read."""
    earlier = previous(period)
    return measure(SqlChanges(session).deployed(Window(earlier.start, period.end)), period)


def deployments(session: Any, period: Window) -> Dora:
    """DORA's metrics of a period alone (App Home's line)."""
    return dora(SqlChanges(session).deployed(period), period)


def mine(session: Any, user_id: str, limit: int = 20) -> list[Change]:
    return SqlChanges(session).find(stages=OPEN, person=user_id, limit=limit)


def open_changes(session: Any, limit: int = 30) -> list[Change]:
    return SqlChanges(session).find(stages=OPEN, limit=limit)


def awaiting(session: Any, actor: Actor, policy: Policy, limit: int = 20) -> list[Change]:
    """Changes this person could review or approve now, newest first: the database narrows
    them down (storage: open, not theirs, of a kind they may decide), the stage machine says
    yes or no to each, until `limit` are found or none is left."""
    wanted = {Action.RECORD_REVIEW, Action.APPROVE}
    candidates = SqlChanges(session).decidable_by(
        actor.user_id,
        approves_normal=policy.may_approve(actor, Classification.NORMAL),
        approves_emergency=policy.may_approve(actor, Classification.EMERGENCY),
    )
    found = []
    for change in candidates:
        if wanted & set(allowed_actions(change, actor, policy)):
            found.append(change)
            if len(found) == limit:
                break
    return found


def reviews_owed(session: Any, user_id: str, limit: int = 20) -> list[Change]:
    return SqlChanges(session).owing_review(user_id, limit)


def booked(session: Any, window: Window) -> tuple[list[Booking], dict[int, tuple[str, str]]]:
    """The changes booked in `window`, and where each one's thread is (channel, ts), for those
    already posted: the calendar feed's read, by the schedule's index."""
    bookings = SqlChanges(session).scheduled(window)
    return bookings, outbox.threads(session, [b.number for b in bookings])


@dataclass(frozen=True)
class Calendar:
    """The calendar of a span, and where the cards of its first `LINKED` changes are."""

    agenda: Agenda
    #: Change number -> (channel, ts) of its card, for those already posted.
    threads: dict[int, tuple[str, str]]


def calendar(session: Any, policy: Policy, asked: Span) -> Calendar:
    """The changes booked in the days `asked` and the policy's freezes in force, on each of
    those local days: one indexed query for the bookings, one for the threads."""
    booked = SqlChanges(session).scheduled(asked.window)
    found = agenda(asked, booked, policy.freeze)
    return Calendar(found, outbox.threads(session, found.numbers()[:LINKED]))
