"""Fakes for the ports of workflows/: an in-memory unit of work and a clock that only moves
when told. They keep the real contracts (copies on read, compare-and-set on save, commit or
nothing) so the rules are tested as the storage will run them."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from workflows.audit import GENESIS, AuditEntry, ChainedEntry, chain
from workflows.catalog import Draft, Proposal, ProposalStage
from workflows.chase import Obligation, Owed
from workflows.errors import AlreadyRequested, NotFound, StaleChange
from workflows.model import Change, ChangeDetails, Stage, Window, format_ref, pull_request_key
from workflows.schedule import Booking, Conflict, booking, conflicts, overlap


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class FakeChanges:
    def __init__(self) -> None:
        self.committed: dict[int, Change] = {}
        self.pending: dict[int, Change] = {}
        #: The form each change was requested with (a rolled-back one is in neither dict).
        self.forms: dict[str, int] = {}

    def add(
        self,
        details: ChangeDetails,
        requester: str,
        at: datetime,
        requested_in: str = "",
        form: str = "",
    ) -> Change:
        earlier = self.forms.get(form) if form else None
        if earlier in self.committed or earlier in self.pending:
            raise AlreadyRequested(earlier)
        number = max([0, *self.committed, *self.pending]) + 1
        if form:
            self.forms[form] = number
        change = Change(
            number=number,
            details=details,
            requester=requester,
            created_at=at,
            requested_in=requested_in,
        )
        self.pending[number] = copy.deepcopy(change)
        change.version = 0
        return change

    def get(self, number: int) -> Change:
        stored = self.pending.get(number) or self.committed.get(number)
        if stored is None:
            raise NotFound("change", format_ref(number))
        return copy.deepcopy(stored)

    def get_many(self, numbers: Sequence[int]) -> dict[int, Change]:
        found = {}
        for number in numbers:
            with contextlib.suppress(NotFound):
                found[number] = self.get(number)
        return found

    def linked_to(self, pull_requests: Sequence[str]) -> Change | None:
        wanted = {p.lower() for p in pull_requests}
        open_ = [
            c
            for c in self.committed.values()
            if pull_request_key(c.details.links.pull_request) in wanted and not c.stage.is_final
        ]
        newest = max(open_, key=lambda c: c.number, default=None)
        return copy.deepcopy(newest)

    def scheduled(
        self, window: Window, *, services: Sequence[str] | None = None, occupying: bool = False
    ) -> list[Booking]:
        """As SqlChanges.scheduled answers (tests/integration/test_schedule.py asks both the
        same questions): a change that names no service is in the calendar of its window,
        and on no service's."""
        named = None if services is None else {s.strip().lower() for s in services}
        found = []
        for change in {**self.committed, **self.pending}.values():
            booked = booking(change)
            if booked is None or overlap(booked.window, window) is None:
                continue
            if occupying and not booked.occupies:
                continue
            if named is not None:
                common = tuple(s for s in booked.services if s in named)
                if not common:
                    continue
                booked = replace(booked, services=common)
            found.append(booked)
        return sorted(found, key=lambda b: (b.window.start, b.number))

    def conflicts(self, change: Change) -> tuple[Conflict, ...]:
        mine = booking(change)
        if mine is None or not mine.occupies:
            return ()
        return conflicts(mine, self.scheduled(mine.window, services=mine.services, occupying=True))

    def save(self, change: Change) -> None:
        stored = self.pending.get(change.number) or self.committed.get(change.number)
        if stored is not None and stored.version != change.version:
            raise StaleChange(change.ref, change.version, stored.version)
        change.version += 1
        self.pending[change.number] = copy.deepcopy(change)

    def find(
        self,
        *,
        stages: Sequence[Stage] | None = None,
        person: str | None = None,
        review_owed: bool | None = None,
        limit: int = 50,
    ) -> list[Change]:
        found = [
            copy.deepcopy(c)
            for c in sorted(self.committed.values(), key=lambda c: -c.number)
            if (stages is None or c.stage in stages)
            and (person is None or person in c.people_in_charge())
            and (review_owed is None or c.review_owed == review_owed)
        ]
        return found[:limit]


class FakeAudit:
    def __init__(self) -> None:
        self.events: list[ChainedEntry] = []
        self.pending: list[AuditEntry] = []
        #: Events recorded with nothing to show in Slack.
        self.unshown: list[AuditEntry] = []

    def append(self, entry: AuditEntry, *, shown: bool = True) -> None:
        self.pending.append(entry)
        if not shown:
            self.unshown.append(entry)

    def flush(self) -> None:
        for entry in self.pending:
            prev = self.events[-1].hash if self.events else GENESIS
            self.events.append(chain(len(self.events) + 1, prev, entry))
        self.pending.clear()

    def actions(self, ref: str | None = None) -> list[str]:
        return [e.entry.action for e in self.events if ref is None or e.entry.ref == ref]


class FakeObligations:
    def __init__(self) -> None:
        self.committed: dict[tuple[Owed, int], Obligation] = {}
        self.pending: dict[tuple[Owed, int], Obligation | None] = {}

    def _current(self, key: tuple[Owed, int]) -> Obligation | None:
        return self.pending[key] if key in self.pending else self.committed.get(key)

    def owe(self, obligation: Obligation) -> None:
        self.pending[(obligation.kind, obligation.number)] = obligation

    def find(self, kind: Owed, number: int) -> Obligation | None:
        return self._current((kind, number))

    def update(self, obligation: Obligation) -> None:
        self.pending[(obligation.kind, obligation.number)] = obligation

    def settle(self, kind: Owed, number: int, at: datetime) -> None:
        if self._current((kind, number)) is not None:
            self.pending[(kind, number)] = None

    def flush(self) -> None:
        for key, value in self.pending.items():
            if value is None:
                self.committed.pop(key, None)
            else:
                self.committed[key] = value
        self.pending.clear()


class FakeProposals:
    def __init__(self) -> None:
        self.committed: dict[int, Proposal] = {}
        self.pending: dict[int, Proposal] = {}

    def add(self, draft: Draft, proposer: str, at: datetime) -> Proposal:
        number = max([0, *self.committed, *self.pending]) + 1
        proposal = Proposal(number=number, draft=draft, proposer=proposer, created_at=at)
        self.pending[number] = copy.deepcopy(proposal)
        return proposal

    def get(self, number: int) -> Proposal:
        stored = self.pending.get(number) or self.committed.get(number)
        if stored is None:
            raise NotFound("catalog proposal", f"STD-{number:04d}")
        return copy.deepcopy(stored)

    def save(self, proposal: Proposal) -> None:
        stored = self.pending.get(proposal.number) or self.committed.get(proposal.number)
        if stored is not None and stored.version != proposal.version:
            raise StaleChange(proposal.ref, proposal.version, stored.version)
        proposal.version += 1
        self.pending[proposal.number] = copy.deepcopy(proposal)

    def _all(self) -> list[Proposal]:
        return [copy.deepcopy(p) for p in {**self.committed, **self.pending}.values()]

    def open_for(self, procedure_id: str) -> list[Proposal]:
        return [
            p
            for p in self._all()
            if p.procedure_id == procedure_id and p.stage is ProposalStage.PROPOSED
        ]

    def adopted(self) -> list[Proposal]:
        found = [p for p in self._all() if p.stage is ProposalStage.ADOPTED]
        return sorted(found, key=lambda p: (p.decided_at or p.created_at, p.number))


class FakeUnitOfWork:
    def __init__(self) -> None:
        self.changes = FakeChanges()
        self.audit = FakeAudit()
        self.obligations = FakeObligations()
        self.proposals = FakeProposals()
        self.commits = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        self.changes.committed.update(self.changes.pending)
        self.changes.pending.clear()
        self.audit.flush()
        self.obligations.flush()
        self.proposals.committed.update(self.proposals.pending)
        self.proposals.pending.clear()
        self.commits += 1

    def rollback(self) -> None:
        self.changes.pending.clear()
        self.audit.pending.clear()
        self.obligations.pending.clear()
        self.proposals.pending.clear()
