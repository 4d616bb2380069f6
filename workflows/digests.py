"""Signed digests of the audit trail: what the trail was at a moment, kept outside the database.

The hash chain catches an edited event, but not a trail rewritten whole by someone who
recomputes every hash after their edit. A digest, signed with a key the database never sees
and written to a directory the database cannot reach, fixes what the chain was: its last
event's sequence number and hash, how many events it held, and a short mark of each event
since the digest before. Each digest names the signature of the one before it, and one is
written every interval even when nothing happened, so a digest removed is a gap in time
and a break in the chain of digests. A digest says whether the schedule wrote it or someone
asked for it (`changebot audit digest`): only the schedule promises when the next is due, so
only its digests' intervals say when one is missing.

This module decides what a digest says, how it is serialised for signing, when the next one
is due and what a trail and a directory of digests must agree on. Keys, files and the
database are the adapters' business: a signature is checked by the function it is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.audit import ChainedEntry

FORMAT = "changebot-digest/2"
#: The first format, still read and checked: it did not say whether the schedule wrote a
#: digest, and its bytes signed have no `scheduled` field.
FORMAT_1 = "changebot-digest/1"
#: Hexadecimal digits of each event's hash kept in a digest to find the first event changed:
#: the last event's full hash is what proves the trail; the marks only say where it differs.
MARK = 8
#: A digest may come this much later than its interval before one counts as missing: the
#: timer's tick and a lease taken over from a replica that died both take a little time.
LEAST_SLACK = timedelta(minutes=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"^digest-(\d{8}T\d{6}\.\d{6})Z\.json$")
_FIELDS = {
    "format": str,
    "at": str,
    "seq": int,
    "hash": str,
    "events": int,
    "since": int,
    "marks": str,
    "key": str,
    "every": int,
    "scheduled": bool,
    "signature": str,
}


class DigestMalformed(ValueError):
    """A digest file that is not a digest this changebot can read; the message says why."""


@dataclass(frozen=True)
class Digest:
    """What the trail was at `at`, signed. `marks` holds MARK digits of the hash of each event
    after #`since` up to #`seq`; `previous` is the signature of the digest before (None for
    the first); `key` the fingerprint of the public key that checks `signature`; `scheduled`
    whether `changebot serve`'s schedule wrote it (False: asked for, and `every` is only the
    asker's setting), None in the first format, which did not say."""

    at: datetime
    seq: int
    hash: str
    events: int
    since: int
    marks: str
    previous: str | None
    key: str
    every: int
    scheduled: bool | None = True
    signature: str = ""
    format: str = field(default=FORMAT)

    def body(self) -> bytes:
        """The bytes signed: every field but the signature, as sorted-key compact JSON."""
        fields = self._fields()
        del fields["signature"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def to_json(self) -> str:
        return json.dumps(self._fields(), sort_keys=True, indent=1) + "\n"

    def signed(self, signature: str) -> Digest:
        return replace(self, signature=signature)

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.every)

    def mark_of(self, seq: int) -> str | None:
        """The mark this digest keeps of event #seq, or None if it keeps none."""
        if not self.since < seq <= self.seq:
            return None
        start = (seq - self.since - 1) * MARK
        return self.marks[start : start + MARK] or None

    @property
    def sets_schedule(self) -> bool:
        """Whether the next digest is due an interval after this one: it was written on the
        schedule, or in the first format, which did not say (and is given the benefit)."""
        return self.scheduled is not False

    def _fields(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["at"] = format_time(self.at)
        if self.format == FORMAT_1:
            del fields["scheduled"]
        return fields


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def said(moment: datetime) -> str:
    """A digest's time as a sentence shows it."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def mark(event_hash: str) -> str:
    return event_hash[:MARK]


def parse(text: str) -> Digest:
    """A digest from its file's text, or DigestMalformed saying what is wrong with it."""
    try:
        fields = json.loads(text)
    except ValueError as error:
        raise DigestMalformed(f"it is not JSON ({error})") from None
    except RecursionError:
        raise DigestMalformed("it is not JSON a digest could be: nested too deeply") from None
    if not isinstance(fields, dict):
        raise DigestMalformed("it is not a JSON object")
    form = fields.get("format")
    if form not in (FORMAT, FORMAT_1):
        raise DigestMalformed(f"its format is {form!r}, not {FORMAT!r} (nor {FORMAT_1!r})")
    expected = _FIELDS if form == FORMAT else {n: k for n, k in _FIELDS.items() if n != "scheduled"}
    for name, kind in expected.items():
        value = fields.get(name)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise DigestMalformed(f"its {name!r} is missing or not a {kind.__name__}")
    previous = fields.get("previous")
    if previous is not None and not isinstance(previous, str):
        raise DigestMalformed("its 'previous' is neither a signature nor null")
    try:
        at = datetime.fromisoformat(fields["at"])
    except ValueError:
        raise DigestMalformed(f"its time {fields['at']!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise DigestMalformed(f"its time {fields['at']!r} has no time zone")
    try:
        at = at.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the calendar begins in UTC
        raise DigestMalformed(f"its time {fields['at']!r} is not a time in UTC") from None
    unknown = set(fields) - set(expected) - {"previous"}
    if unknown:
        raise DigestMalformed(f"it has fields no digest has: {', '.join(sorted(unknown))}")
    return Digest(
        at=at,
        seq=fields["seq"],
        hash=fields["hash"],
        events=fields["events"],
        since=fields["since"],
        marks=fields["marks"],
        previous=previous,
        key=fields["key"],
        every=fields["every"],
        scheduled=fields.get("scheduled"),
        signature=fields["signature"],
        format=form,
    )


def file_name(at: datetime) -> str:
    """A digest's file name: its time in UTC, so that names sort as the digests were written."""
    return f"digest-{at.astimezone(UTC):%Y%m%dT%H%M%S.%f}Z.json"


def is_digest_name(name: str) -> bool:
    return _NAME.match(name) is not None


def next_due(now: datetime, every: timedelta) -> datetime:
    """The next whole interval after `now` (counted from the epoch: on the hour, hourly)."""
    step = every.total_seconds()
    elapsed = (now - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=(elapsed // step + 1) * step)


def allowed_gap(every: timedelta) -> timedelta:
    """The longest time between two digests before one counts as missing."""
    return every + max(every / 4, LEAST_SLACK)


def due_by(last: Digest, neighbour: Digest) -> datetime:
    """When the digest due after `last` (one that sets the schedule) counts as missing: the
    interval `last` was written under, and its slack. A digest asked for in between does not
    move the schedule, whatever interval its asker had set. A first-format digest did not say
    whether the schedule wrote it, so it is judged against the larger interval of it and its
    `neighbour`, as likely to be the schedule's."""
    every = last.interval
    if last.scheduled is None:
        every = max(every, neighbour.interval)
    return last.at + allowed_gap(every)


# -- checking a directory of digests ---------------------------------------------------------


@dataclass(frozen=True)
class Named:
    """A digest and the file it came from."""

    name: str
    digest: Digest


def check_digests(
    digests: Iterable[Named], fingerprint: str, genuine: Callable[[Digest], bool]
) -> tuple[list[Named], list[str]]:
    """The digests, in the order they were written, checked against each other: returns the
    ones whose signature `genuine` accepts, and a sentence for each problem found."""
    trusted: list[Named] = []
    problems: list[str] = []
    before: Named | None = None
    #: The last digest that set the schedule, and whether its successor was said missing.
    last: Named | None = None
    missing_said = False
    for one in digests:
        d = one.digest
        if d.key != fingerprint:
            problems.append(
                f"{one.name} was signed by the key {d.key}, not by the public key given "
                f"({fingerprint})."
            )
            continue
        if not genuine(d):
            problems.append(
                f"{one.name}'s signature does not verify: the digest was altered after it was "
                "signed, or not signed with this key."
            )
            continue
        trusted.append(one)
        missing = None if last is None or missing_said else _missing(last.digest, d)
        if missing is not None:
            problems.append(missing)
            missing_said = True
        if before is None:
            if d.previous is not None:
                problems.append(
                    f"{one.name} follows a digest that is not in the directory: the digests "
                    "before it are missing."
                )
        else:
            problems.extend(_between(before, one, late=missing is not None))
        before = one
        if d.sets_schedule:
            last, missing_said = one, False
    return trusted, problems


def _missing(last: Digest, d: Digest) -> str | None:
    """The gap between the digest that last set the schedule and `d`, if one was due between."""
    if d.at <= due_by(last, d):
        return None
    return f"A digest is missing between {said(last.at)} and {said(d.at)}."


def _between(before: Named, after: Named, *, late: bool) -> list[str]:
    """What is wrong between two digests in a row; `late` when a digest was already said
    missing before `after`, which explains a break in the chain too."""
    b, a = before.digest, after.digest
    problems = []
    if not late and a.previous != b.signature:
        problems.append(
            f"{after.name} does not follow {before.name}: a digest between them is missing "
            "or was replaced."
        )
    if a.seq < b.seq:
        problems.append(
            f"{after.name} signed a trail ending at #{a.seq}, shorter than the #{b.seq} "
            f"{before.name} signed: events were removed in between."
        )
    return problems


# -- checking the trail against the digests ---------------------------------------------------


def _unsigned_past(written: list[Digest]) -> tuple[int, datetime] | None:
    """The sequence number and time past which an event was signed by no digest: after the
    latest digest, and after the next scheduled one was due (None: no schedule to go by)."""
    schedule = [d for d in written if d.sets_schedule]
    if not schedule:
        return None
    last, latest = schedule[-1], written[-1]
    neighbour = written[-2] if last is latest and len(written) > 1 else latest
    return latest.seq, due_by(last, neighbour)


class Comparison:
    """Compares the trail, streamed in chain order through `tap`, with what the digests
    signed; `findings` then says, in sentences, where they differ."""

    def __init__(self, digests: Iterable[Named]) -> None:
        self._pending = sorted(digests, key=lambda n: (n.digest.since, n.digest.seq))
        written = sorted(self._pending, key=lambda n: n.digest.at)
        #: The digest written last; an event past its sequence number, recorded after the
        #: next scheduled digest was due, was signed by none.
        self._latest = written[-1] if written else None
        self._unsigned_past = _unsigned_past([n.digest for n in written])
        self._unsigned: ChainedEntry | None = None
        self._active: list[Named] = []
        self._first_changed: str | None = None
        self._unmatched: list[Named] = []
        self.matched = 0
        self.last_seq = 0

    def tap(self, events: Iterable[ChainedEntry]) -> Iterator[ChainedEntry]:
        for event in events:
            self._compare(event)
            yield event

    def _compare(self, event: ChainedEntry) -> None:
        self.last_seq = event.seq
        past = self._unsigned_past
        unsigned = past is not None and event.seq > past[0] and event.entry.at > past[1]
        if unsigned and self._unsigned is None:
            self._unsigned = event
        while self._pending and self._pending[0].digest.since < event.seq:
            self._active.append(self._pending.pop(0))
        for one in self._active:
            kept = one.digest.mark_of(event.seq)
            if self._first_changed is None and kept is not None and kept != mark(event.hash):
                e = event.entry
                self._first_changed = (
                    f"Audit event #{event.seq} ({e.ref} {e.action}) is not the event the digest "
                    f"of {said(one.digest.at)} signed: the trail was rewritten from there on."
                )
            if one.digest.seq == event.seq:
                if event.hash == one.digest.hash and one.digest.events == event.seq:
                    self.matched += 1
                else:
                    self._unmatched.append(one)
        self._active = [one for one in self._active if one.digest.seq > event.seq]

    def findings(self, *, complete: bool = True) -> list[str]:
        """What differs; `complete` when the trail was read to its end (not stopped at a
        break in its chain), so that digests beyond the last event read mean events removed."""
        found = []
        if self._unmatched:
            if self._first_changed is not None:
                found.append(self._first_changed)
            first = self._unmatched[0]
            found.append(
                f"{len(self._unmatched)} digest(s), the first {first.name}, signed a trail "
                f"that is not the one in the database at #{first.digest.seq}."
            )
        cut = [o for o in [*self._active, *self._pending] if o.digest.seq > self.last_seq]
        if cut and complete:
            first = min(cut, key=lambda n: n.digest.seq)
            found.append(
                f"{first.name} signed a trail of {first.digest.events} events ending at "
                f"#{first.digest.seq}, but the trail ends at #{self.last_seq}: events were "
                "removed."
            )
        if self._unsigned is not None and self._latest is not None and complete:
            latest, event = self._latest.digest, self._unsigned
            found.append(
                f"No digest signed the trail after {said(latest.at)} ({self._latest.name}), "
                f"yet audit event #{event.seq} was recorded at {said(event.entry.at)} and "
                f"#{self.last_seq} is the last: the digests after it are missing, or none "
                "has been written since (is `changebot serve` writing them?)."
            )
        return found
