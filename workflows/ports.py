"""What the change process needs from the outside world, declared as protocols."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self

from workflows.audit import AuditEntry
from workflows.catalog import Draft, Proposal
from workflows.chase import Obligation, Owed
from workflows.model import Change, ChangeDetails, Stage, Window
from workflows.schedule import Booking, Conflict


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ChangeRepository(Protocol):
    def add(
        self,
        details: ChangeDetails,
        requester: str,
        at: datetime,
        requested_in: str = "",
        form: str = "",
    ) -> Change:
        """Store a new change in Request and give it its number. `form`: the form it was
        requested with, if any; a second change from the same form raises AlreadyRequested
        naming the first (so a form Slack sends twice makes one change)."""
        ...

    def get(self, number: int) -> Change:
        """The change, or NotFound."""
        ...

    def get_many(self, numbers: Sequence[int]) -> dict[int, Change]:
        """The changes that exist among `numbers`, by number."""
        ...

    def linked_to(self, pull_requests: Sequence[str]) -> Change | None:
        """The newest open change linking to one of these pull requests (`owner/repo#n`)."""
        ...

    def scheduled(
        self, window: Window, *, services: Sequence[str] | None = None, occupying: bool = False
    ) -> list[Booking]:
        """The changes booked in `window` (on `services`, if given: a change that names none
        is on none of them; only those still occupying their windows, if `occupying`),
        earliest first."""
        ...

    def conflicts(self, change: Change) -> tuple[Conflict, ...]:
        """The open changes whose windows overlap this one's on a service both name."""
        ...

    def save(self, change: Change) -> None:
        """Write the change if nobody saved it since it was read (else StaleChange).

        On success the change's version goes up by one.
        """
        ...

    def find(
        self,
        *,
        stages: Sequence[Stage] | None = None,
        person: str | None = None,
        review_owed: bool | None = None,
        limit: int = 50,
    ) -> list[Change]:
        """Changes in the given stages and/or involving `person` (requester or implementer),
        newest first."""
        ...


class AuditLog(Protocol):
    def append(self, entry: AuditEntry, *, shown: bool = True) -> None:
        """Add an event to the trail in the current transaction.

        `shown` False: the event has nothing to show in Slack (a pipeline asking the gate
        again and getting the same answer), so the change's publication is not made due.
        """
        ...


class ObligationBook(Protocol):
    """What is owed and when it is chased next (post-change reviews, retrospective approvals,
    the policy review): one open obligation per (kind, change)."""

    def owe(self, obligation: Obligation) -> None:
        """Open the obligation, or reopen it with this deadline and plan."""
        ...

    def find(self, kind: Owed, number: int) -> Obligation | None:
        """The open obligation, if any."""
        ...

    def update(self, obligation: Obligation) -> None:
        """Write a new plan (after a reminder or a snooze)."""
        ...

    def settle(self, kind: Owed, number: int, at: datetime) -> None:
        """Nothing more is owed; stop chasing."""
        ...


class ProposalRepository(Protocol):
    """Proposals to add, revise or retire Standard change catalog procedures."""

    def add(self, draft: Draft, proposer: str, at: datetime) -> Proposal:
        """Store a new proposal and give it its number."""
        ...

    def get(self, number: int) -> Proposal:
        """The proposal, or NotFound."""
        ...

    def save(self, proposal: Proposal) -> None:
        """Write the proposal if nobody saved it since it was read (else StaleChange)."""
        ...

    def open_for(self, procedure_id: str) -> list[Proposal]:
        """The undecided proposals about this procedure."""
        ...

    def adopted(self) -> list[Proposal]:
        """The adopted proposals, in the order they were adopted."""
        ...


class UnitOfWork(Protocol):
    """One transaction: everything recorded in it is committed together or not at all."""

    changes: ChangeRepository
    audit: AuditLog
    obligations: ObligationBook
    proposals: ProposalRepository

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...
