"""The storage side of the audit trail's digests: when the next is due, who is writing it, what
the trail is now, and the directory the digests are kept in.

One row says when the next digest is due. A replica claims it under a lease (the discipline
of storage/leases.py: of several replicas exactly one writes each digest), writes the digest,
and moves the row on to the next interval only while the lease is still its own.

The directory holds one file per digest, named by its time so that names sort in the order
they were written; a file is written whole under a temporary name, then renamed, so that
nobody ever reads half a digest.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, func, or_, true
from sqlmodel import Field, Session, SQLModel, col, select

from storage import leases
from storage.repositories import read_head
from storage.tables import AuditEventRow, _when
from workflows.digests import Digest, DigestMalformed, Named, file_name, is_digest_name, mark, parse

#: The one row of the digest schedule.
ROW = 1
BATCH = 5000


class DigestScheduleRow(SQLModel, table=True):
    """When the next digest is due (none yet: at once), and the replica writing it."""

    __tablename__ = "digest_schedule"

    id: int = Field(default=ROW, primary_key=True)
    next_at: datetime | None = _when(nullable=True)
    lease_owner: str = Field(default="", max_length=80)
    lease_until: datetime | None = _when(nullable=True)


@dataclass(frozen=True)
class Turn:
    """A digest this replica holds the lease to write."""

    owner: str
    claimed_at: datetime


def _due(now: datetime) -> ColumnElement[bool]:
    next_at = col(DigestScheduleRow.next_at)
    return or_(next_at.is_(None), next_at <= now)


def _claim(
    session: Session, due: ColumnElement[bool], owner: str, now: datetime, lease: timedelta
) -> list[Turn]:
    query = leases.due_query(
        DigestScheduleRow,
        now,
        1,
        due=due,
        order_by=col(DigestScheduleRow.id),
        skip_locked=leases.skip_locked(session),
    )
    return leases.claim(session, query, owner, now, lease, lambda _: Turn(owner, now))


def claim_due(
    session: Session, owner: str, now: datetime, lease: timedelta, limit: int = 1
) -> list[Turn]:
    """Lease the digest if one is due and nobody is writing it; commits."""
    return _claim(session, _due(now), owner, now, lease)


def claim_now(session: Session, owner: str, now: datetime, lease: timedelta) -> Turn | None:
    """Lease the digest, due or not (one asked for on demand), unless someone is writing it."""
    claimed = _claim(session, true(), owner, now, lease)
    return claimed[0] if claimed else None


def holder(session: Session) -> str:
    row = session.get(DigestScheduleRow, ROW)
    return row.lease_owner if row else ""


def finish(session: Session, owner: str, next_at: datetime | None) -> bool:
    """Hand the lease back, moving the schedule on to `next_at` (None: leave it where it is);
    only while the lease is still `owner`'s. Commits."""
    key = col(DigestScheduleRow.id) == ROW
    values = {"lease_owner": "", "lease_until": None}
    if next_at is not None:
        values["next_at"] = next_at  # type: ignore[assignment]
    return leases.record(session, DigestScheduleRow, key, owner, **values)


def release_all(session: Session, owner: str) -> int:
    return leases.release_all(session, DigestScheduleRow, owner)


# -- what the trail is now ------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The trail as a digest signs it: the last event, the count, the marks after `since`."""

    seq: int
    hash: str
    events: int
    since: int
    marks: str


def snapshot(session: Session, since: int) -> Snapshot:
    """The trail now, with a mark of each event after #`since` (fewer if the trail is shorter).
    Events up to the head never change once written, so the reads agree however they
    interleave with writers."""
    seq, last = read_head(session)
    events = session.exec(
        select(func.count()).select_from(AuditEventRow).where(col(AuditEventRow.seq) <= seq)
    ).one()
    since = min(since, seq)
    marks = "".join(mark(h) for h in _hashes(session, since, seq))
    return Snapshot(seq, last, int(events), since, marks)


def _hashes(session: Session, after: int, upto: int) -> Iterator[str]:
    while after < upto:
        rows = session.exec(
            select(AuditEventRow.seq, AuditEventRow.hash)
            .where(col(AuditEventRow.seq) > after, col(AuditEventRow.seq) <= upto)
            .order_by(col(AuditEventRow.seq))
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for _, event_hash in rows:
            yield event_hash
        after = rows[-1][0]


# -- the directory --------------------------------------------------------------------------


class DirectoryProblem(Exception):
    """The digest directory cannot be read or written, or holds a digest that cannot be read."""

    code = 2


def digest_names(directory: Path) -> list[str]:
    """The digest files in `directory`, in the order they were written."""
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if is_digest_name(e.name))
    except OSError as error:
        raise DirectoryProblem(
            f"cannot read the digest directory {directory}: {error.strerror}."
        ) from error


def read_digest(directory: Path, name: str) -> Digest:
    """The digest in `name`, or DigestMalformed saying why it is not one."""
    try:
        text = (directory / name).read_text(encoding="utf-8")
    except OSError as error:
        raise DigestMalformed(f"it cannot be read ({error.strerror})") from error
    except UnicodeDecodeError:
        raise DigestMalformed("it is not text") from None
    return parse(text)


def latest(directory: Path) -> Named | None:
    """The last digest written, to chain the next one to; DirectoryProblem if it is unreadable
    (chaining past it would hide it)."""
    names = digest_names(directory)
    if not names:
        return None
    try:
        return Named(names[-1], read_digest(directory, names[-1]))
    except DigestMalformed as error:
        raise DirectoryProblem(
            f"the latest digest {directory / names[-1]} is not a digest: {error}. Move it "
            "aside (and tell your auditors) before digests can be written again."
        ) from error


def write(directory: Path, digest: Digest) -> Path:
    """Write `digest` to its own file, whole or not at all."""
    path = directory / file_name(digest.at)
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".digest-", suffix=".tmp")
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(digest.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise DirectoryProblem(
            f"cannot write a digest to {directory}: {error.strerror}."
        ) from error
    return path
