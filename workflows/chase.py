"""Chasing what is owed: post-change reviews, retrospective approvals, the policy review.

An obligation has an owner, a deadline and the time its next reminder is due. Before the
deadline the owner is reminded at the policy's cadence; after it, every reminder escalates
(the approvers and the policy owner hear of it) at the escalation cadence. The next reminder
is planned from when this one was due, not from when a sweep got to it (else each would come
a sweep late); a reminder that came due while nobody was running is sent once, and the next
planned from then: a long pause never produces a burst of reminders. A snooze delays the
owner's reminders, never past the deadline, and an overdue obligation cannot be snoozed: its
escalations go on until it is settled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from workflows.errors import NotAllowed, ValidationFailed


class Owed(StrEnum):
    POST_CHANGE_REVIEW = "post_change_review"
    RETROSPECTIVE_APPROVAL = "retrospective_approval"
    POLICY_REVIEW = "policy_review"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Owed.POST_CHANGE_REVIEW: "post-change review",
    Owed.RETROSPECTIVE_APPROVAL: "retrospective approval",
    Owed.POLICY_REVIEW: "policy review",
}

#: The snoozes a person may choose from a reminder.
SNOOZES = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}


@dataclass(frozen=True)
class Cadence:
    every: timedelta
    escalate_every: timedelta


@dataclass(frozen=True)
class Obligation:
    """Something owed, by whom, by when, and when to chase it next."""

    kind: Owed
    owner: str
    deadline: datetime
    next_at: datetime
    number: int = 0  # the change it is about; 0 for the policy review
    reminders: int = 0
    escalations: int = 0
    snoozed_until: datetime | None = None

    def is_overdue(self, now: datetime) -> bool:
        return now >= self.deadline


@dataclass(frozen=True)
class Reminder:
    """One chase: who is reminded, and whether it escalates past the owner."""

    obligation: Obligation
    escalated: bool
    sent_at: datetime
    overdue_by: timedelta


def owe(
    kind: Owed, owner: str, now: datetime, deadline: datetime, cadence: Cadence, number: int = 0
) -> Obligation:
    """A new obligation: first reminder one cadence from now, never later than the deadline."""
    return Obligation(kind, owner, deadline, min(now + cadence.every, deadline), number)


def is_due(obligation: Obligation, now: datetime) -> bool:
    return now >= obligation.next_at


def remind(obligation: Obligation, now: datetime, cadence: Cadence) -> tuple[Reminder, Obligation]:
    """Send the due reminder once and plan the next one a cadence after this one was due (or
    after now, if that has passed too: the missed slots are not made up for)."""
    escalated = obligation.is_overdue(now)
    step = cadence.escalate_every if escalated else cadence.every
    following = obligation.next_at + step
    if following <= now:
        following = now + step
    if not escalated:
        following = min(following, obligation.deadline)
    reminder = Reminder(obligation, escalated, now, max(now - obligation.deadline, timedelta()))
    planned = replace(
        obligation,
        next_at=following,
        reminders=obligation.reminders + 1,
        escalations=obligation.escalations + int(escalated),
        snoozed_until=None,
    )
    return reminder, planned


def may_snooze(obligation: Obligation, now: datetime) -> str | None:
    """None if the owner may put their reminders off now, else why not. The policy review's
    reminders go to its owner alone, escalated or not: those may always be put off."""
    if obligation.kind is Owed.POLICY_REVIEW:
        return None
    if obligation.is_overdue(now):
        return (
            f"The {obligation.kind.label} is overdue: it is escalated until it is in, and "
            "escalations cannot be snoozed."
        )
    return None


def snooze(obligation: Obligation, now: datetime, choice: str) -> Obligation:
    """Put the next reminder off by one of the allowed snoozes (recorded by the caller).

    A snooze never brings a reminder forward, nor puts it past the deadline, where the
    escalations begin; `snoozed_until` is when the next one really comes, which is what the
    person who snoozed is told.
    """
    delay = SNOOZES.get(choice)
    if delay is None:
        raise ValidationFailed("snooze", f"choose one of {', '.join(SNOOZES)}.")
    if (refused := may_snooze(obligation, now)) is not None:
        raise NotAllowed("", "snooze", refused)
    until = max(obligation.next_at, now + delay)
    if obligation.kind is not Owed.POLICY_REVIEW:
        until = min(until, obligation.deadline)
    return replace(obligation, next_at=until, snoozed_until=until)
