"""The audit trail: append-only events, hash-chained so that no edit goes unnoticed.

Each event stores the hash of the one before it; the hash covers every field of the event.
Editing, deleting, inserting or reordering any event breaks the chain at that event, and
`verify` names the first one that breaks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """One thing that happened to one change, and who did it."""

    at: datetime
    actor: str
    action: str
    ref: str
    from_stage: str
    to_stage: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainedEntry:
    """An audit entry as stored: with its place in the chain and its hashes."""

    seq: int
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain first breaks, and how."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"audit event #{self.seq}: {self.problem}"


def canonical_time(moment: datetime) -> str:
    """Timestamps are hashed in UTC with microseconds, whatever the database hands back."""
    global _LAST_TIME
    last = _LAST_TIME
    if last[0] is moment:  # the events of one gate round share their moment
        return last[1]
    if moment.tzinfo is None:
        text = moment.replace(tzinfo=UTC).isoformat(timespec="microseconds")
    else:
        text = moment.astimezone(UTC).isoformat(timespec="microseconds")
    _LAST_TIME = (moment, text)
    return text


#: The moment canonical_time wrote last, and how (a datetime never changes once made).
_LAST_TIME: tuple[datetime | None, str] = (None, "")


# Made once: json.dumps with options makes a new encoder on every call, and the gate
# hashes an event for every question it answers. The same class with the same options
# encodes byte for byte as json.dumps does.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def canonical_details(details: dict[str, Any]) -> str:
    return _CANONICAL.encode(details)


def entry_hash(seq: int, prev_hash: str, entry: AuditEntry, details: str | None = None) -> str:
    """The event's hash; `details` is `canonical_details(entry.details)`, if made already."""
    body = _COMPACT.encode(
        [
            seq,
            prev_hash,
            canonical_time(entry.at),
            entry.actor,
            entry.action,
            entry.ref,
            entry.from_stage,
            entry.to_stage,
            canonical_details(entry.details) if details is None else details,
        ]
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def chain(seq: int, prev_hash: str, entry: AuditEntry, details: str | None = None) -> ChainedEntry:
    return ChainedEntry(seq, entry, prev_hash, entry_hash(seq, prev_hash, entry, details))


def verify(
    events: Iterable[ChainedEntry], head: tuple[int, str] | None = None
) -> tuple[int, ChainBreak | None]:
    """Walk the chain in order; return how many events were checked and the first break.

    `head` is the (seq, hash) the store remembers as its latest event, which catches the
    removal of events from the end of the chain.
    """
    expected_seq, expected_prev = 1, GENESIS
    count = 0
    for event in events:
        count += 1
        if event.seq != expected_seq:
            problem = (
                f"expected event #{expected_seq} here: events were deleted, inserted or reordered"
            )
            return count, ChainBreak(event.seq, problem)
        if event.prev_hash != expected_prev:
            return count, ChainBreak(event.seq, "it does not follow the event before it")
        if entry_hash(event.seq, event.prev_hash, event.entry) != event.hash:
            return count, ChainBreak(event.seq, "its content was changed after it was written")
        expected_seq, expected_prev = event.seq + 1, event.hash
    if head is not None and head != (expected_seq - 1, expected_prev):
        last = expected_seq - 1
        if head[0] > last:
            problem = f"the trail ends at #{last} but #{head[0]} was written: events were removed"
            return count, ChainBreak(last + 1, problem)
        if head[0] < last:
            problem = (
                f"#{head[0]} was the last event written: events were added after it"
                if head[0]
                else "no event is on record as written (the chain's head is gone): events "
                "may have been cut from the end"
            )
            return count, ChainBreak(head[0] + 1, problem)
        # A consistent chain with the wrong head was re-hashed after an edit somewhere in it.
        problem = f"#{last} is not the event that was written: the trail was rewritten"
        return count, ChainBreak(last, problem)
    return count, None


def moment_in(value: object) -> datetime | None:
    """A time recorded in an event's details (written as ISO 8601), or None if it is not one."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
