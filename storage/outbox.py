"""What Slack must still be shown, kept in the database until Slack has accepted it.

One `publications` row per change. Writing an audit event marks the change's row due in the
same transaction, so a state change can never be committed without the work of showing it.
A publisher claims due rows with a time-limited lease, delivers, and records its progress
only while it still holds the lease (see bot/publisher.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    Update,
    and_,
    bindparam,
    case,
    func,
    update,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, Session, SQLModel, col, select
from sqlmodel.sql.expression import SelectOfScalar

from storage import driver, leases
from storage.tables import AuditEventRow, _when
from workflows.model import format_ref


class PublicationRow(SQLModel, table=True):
    __tablename__ = "publications"

    number: int = Field(primary_key=True, foreign_key="changes.number")
    channel: str = Field(default="", max_length=40)
    thread_ts: str = Field(default="", max_length=40)
    #: An emergency card's copy in the channel where it was declared (the incident channel).
    mirror_channel: str = Field(default="", max_length=40)
    mirror_ts: str = Field(default="", max_length=40)
    card_version: int = -1
    published_seq: int = 0
    effect_index: int = 0
    due_at: datetime | None = _when(nullable=True, index=True)
    attempts: int = 0
    lease_owner: str = Field(default="", max_length=80)
    lease_until: datetime | None = _when(nullable=True)
    last_error: str = Field(default="", max_length=500)
    #: When the card, shown as it is, will look different by time alone (break-glass
    #: opening): it is due again then, with no news.
    refresh_at: datetime | None = _when(nullable=True)
    #: A note the card's posting still owes (see `Owed`): sent before anything else.
    owed: str = Field(default="", max_length=20)


class Owed:
    """What a publication's `owed` holds: the message that must follow the card's posting."""

    NOTHING = ""
    #: The requester's confirmation that the change is in Slack, with the card's link.
    CONFIRMATION = "confirmation"
    #: In the card's thread: the card was deleted in Slack and is posted again.
    REPOSTED_NOTE = "reposted-note"


@dataclass(frozen=True)
class Publication:
    """A claimed publication: where the change's card is and how far its news got."""

    number: int
    channel: str
    thread_ts: str
    mirror_channel: str
    mirror_ts: str
    card_version: int
    published_seq: int
    effect_index: int
    attempts: int
    last_error: str
    #: When it was due as claimed: news written since changes it (see _releasing).
    due_at: datetime | None = None
    #: When the card shown must be drawn again, news or not.
    refresh_at: datetime | None = None
    #: Until when the claim holds it: no other replica can take it over before then.
    lease_until: datetime | None = None
    #: The note the card's posting still owes (`Owed`).
    owed: str = Owed.NOTHING


def mark_due(session: Session, number: int, at: datetime) -> None:
    """The change has news: create its publication or bring its next attempt forward, in one
    statement.

    The backoff starts over, but a failed attempt stays on record (attempts 1, not 0): the
    next delivery then reads Slack back before posting, as the failed post may have landed
    (its answer lost), and must not be posted twice. The row is written even when already
    due: a publisher delivering it meanwhile must see that there is news (its release then
    keeps the row due; see below).
    """
    driver.together(session, [marking_due(session.get_bind().dialect, {number: at})])


def marking_due(dialect: Dialect, due: Mapping[int, datetime]) -> driver.Statement:
    """mark_due for each of these changes, at its moment, as a statement to run with others
    (the unit of work's writes, storage/uow.py: on PostgreSQL in the round trip of its
    COMMIT, not in one of its own)."""
    stored = driver.binding(_PUBLICATIONS.c.due_at, dialect)
    rows = [(number, stored(at), *_NEW.values()) for number, at in sorted(due.items())]
    return driver.Statement(_MARK_DUE_SQL, rows, many=True)


def redraw(session: Session, numbers: Collection[int], at: datetime) -> None:
    """These changes' cards must be drawn again though the changes did not change (another
    change now conflicts with them, or no longer does): due now, and redrawn, in one
    statement. A change without a publication has no card to draw again."""
    if not numbers:
        return
    # A delivery of one of them may be under way: it clears the card's due time when it ends
    # only if that time is still the one it claimed, so this redraw must not write the very
    # same time (as a clock that has not moved would), or it would be lost: a microsecond
    # earlier, still due, says "again".
    # The same goes for the redraw time: a delivery under way keeps it only if it is no
    # longer the one it saw when it claimed the card (card_drawn).
    due, attempts = _PUBLICATIONS.c.due_at, _PUBLICATIONS.c.attempts
    refresh, number = _PUBLICATIONS.c.refresh_at, _PUBLICATIONS.c.number
    earlier = at - timedelta(microseconds=1)
    # The rows locked in the order of their numbers, as every writer of several locks them
    # (mark_due too): an UPDATE alone locks them in the order it finds them, which on
    # PostgreSQL is where each row's latest version lies. Two replicas redrawing the cards
    # of changes that all conflict with each other, each in its own order, deadlocked, and
    # took a step's COMMIT with them.
    in_order = select(number).where(number.in_(sorted(numbers))).order_by(number)
    session.execute(
        update(_PUBLICATIONS)
        .where(number.in_(in_order.with_for_update()))
        .values(
            due_at=case((due == at, earlier), else_=at),
            refresh_at=case((refresh == at, earlier), else_=at),
            attempts=case((attempts > 1, 1), else_=attempts),
        )
    )


def card_drawn(
    version: int, refresh_at: datetime | None, seen: datetime | None
) -> dict[str, object]:
    """The progress of a card drawn at the change's `version`, to draw again by time alone at
    `refresh_at`; unless a redraw was asked for since the delivery was claimed (the row's
    `refresh_at` is no longer the `seen` one: another change came to conflict with this one,
    or stopped): that redraw stands, or it would be lost."""
    return {"card_version": version, "refresh_at": Drawn(refresh_at, seen)}


@dataclass(frozen=True)
class Drawn:
    """A card's next redraw time, `at`, written only if the row's is still the `seen` one."""

    at: datetime | None
    seen: datetime | None


def threads(session: Session, numbers: Collection[int]) -> dict[int, tuple[str, str]]:
    """Where the cards of these changes are: (channel, ts), for those already posted."""
    if not numbers:
        return {}
    rows = session.execute(
        select(_PUBLICATIONS.c.number, _PUBLICATIONS.c.channel, _PUBLICATIONS.c.thread_ts)
        .where(_PUBLICATIONS.c.number.in_(sorted(numbers)))
        .where(_PUBLICATIONS.c.thread_ts != "")
    )
    return {number: (channel, ts) for number, channel, ts in rows}


_PUBLICATIONS = cast(Table, PublicationRow.__table__)  # type: ignore[attr-defined]
#: A new publication: nothing posted yet.
_NEW = {
    "channel": "",
    "thread_ts": "",
    "mirror_channel": "",
    "mirror_ts": "",
    "card_version": -1,
    "published_seq": 0,
    "effect_index": 0,
    "attempts": 0,
    "lease_owner": "",
    "lease_until": None,
    "last_error": "",
    "refresh_at": None,
    "owed": "",
}

#: mark_due's statement, as the driver takes it (the same on both engines).
_MARK_DUE_SQL = (
    f"INSERT INTO publications (number, due_at, {', '.join(_NEW)}) "
    f"VALUES ({', '.join('?' * (len(_NEW) + 2))}) "
    "ON CONFLICT (number) DO UPDATE SET due_at = excluded.due_at, "
    "attempts = CASE WHEN publications.attempts > 1 THEN 1 ELSE publications.attempts END"
)


def due_query(now: datetime, limit: int, *, skip_locked: bool) -> SelectOfScalar[PublicationRow]:
    """The claim's query: publications due by `now`, oldest first, not leased. Separate so
    that bench/sweep.py can explain exactly the query the publisher runs."""
    due = and_(col(PublicationRow.due_at).is_not(None), col(PublicationRow.due_at) <= now)
    return leases.due_query(
        PublicationRow,
        now,
        limit,
        due=due,
        order_by=col(PublicationRow.due_at),
        skip_locked=skip_locked,
    )


def claim_due(
    session: Session, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[Publication]:
    """Lease up to `limit` due publications to `owner`; commits."""
    query = due_query(now, limit, skip_locked=leases.skip_locked(session))
    return leases.claim(
        session, query, owner, now, lease, _publication, taking=_look_first_if_taken_over
    )


def _look_first_if_taken_over(row: PublicationRow) -> None:
    """Taken over from a replica that died or ran out of lease: what it was posting may have
    landed, so the next delivery reads Slack back before posting (attempts at least 1)."""
    if row.lease_owner:
        row.attempts = max(row.attempts, 1)


def _publication(row: PublicationRow) -> Publication:
    return Publication(
        row.number,
        row.channel,
        row.thread_ts,
        row.mirror_channel,
        row.mirror_ts,
        row.card_version,
        row.published_seq,
        row.effect_index,
        row.attempts,
        row.last_error,
        row.due_at,
        row.refresh_at,
        row.lease_until,
        row.owed,
    )


def record_progress(
    session: Session, number: int, owner: str, now: datetime, **values: object
) -> bool:
    """Write progress only while the lease is still ours (an expired lease nobody took is
    still ours); False if it was lost. One statement; commits."""
    shape, params = _progress(number, owner, values)
    result = session.execute(_recording(shape), params)
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


#: Which columns a delivery's progress writes, and which of them are `Drawn` redraw times: the
#: statements that write it are built once for each shape.
_Shape = tuple[tuple[str, bool], ...]


def _progress(
    number: int, owner: str, progress: dict[str, object]
) -> tuple[_Shape, dict[str, Any]]:
    """The shape of `progress`, and the parameters of a statement writing it to publication
    `number` while `owner` holds its lease (`r_` and each column's name)."""
    shape = tuple(sorted((key, isinstance(value, Drawn)) for key, value in progress.items()))
    params: dict[str, Any] = {"r_number": number, "r_owner": owner}
    for key, value in progress.items():
        if isinstance(value, Drawn):
            params[f"r_{key}"], params[f"r_{key}_seen"] = value.at, value.seen
        else:
            params[f"r_{key}"] = value
    return shape, params


def _parameter(key: str) -> ColumnElement[Any]:
    return bindparam(f"r_{key}", type_=_PUBLICATIONS.c[key].type)


def _progress_sets(shape: _Shape) -> dict[str, Any]:
    """What a progress of this shape writes, each value a parameter; a `Drawn` redraw time
    only if the row's is still the one the delivery saw (a redraw asked for meanwhile
    stands)."""
    sets: dict[str, Any] = {}
    for key, drawn in shape:
        current = _PUBLICATIONS.c[key]
        seen = bindparam(f"r_{key}_seen", type_=current.type)
        sets[key] = (
            case((current.is_not_distinct_from(seen), _parameter(key)), else_=current)
            if drawn
            else _parameter(key)
        )
    return sets


def _under_lease(sets: dict[str, Any]) -> Update:
    """The UPDATE of a publication's row, written only while its lease is the owner's."""
    columns = _PUBLICATIONS.c
    return (
        update(_PUBLICATIONS)
        .where(columns.number == bindparam("r_number"))
        .where(columns.lease_owner == bindparam("r_owner"))
        .values(**sets)
    )


@cache
def _recording(shape: _Shape) -> Update:
    """`record_progress`'s statement for progress of this `shape`, built once."""
    return _under_lease(_progress_sets(shape))


def release(
    session: Session,
    number: int,
    owner: str,
    now: datetime,
    *,
    due_at: datetime | None,
    attempts: int = 0,
    last_error: str = "",
    claimed_due_at: datetime | None = None,
    progress: dict[str, object] | None = None,
) -> bool:
    """Give the lease back: done (due_at None: nothing is due any more, unless news arrived
    since it was claimed at `claimed_due_at`; see `_releasing`) or retry later (due at
    `due_at`); with the delivery's `progress` not yet written. One statement, which is its
    own transaction: the caller may run it in autocommit (no BEGIN and COMMIT round trips on
    PostgreSQL). Commits; False if the lease was lost."""
    shape, params = _progress(number, owner, progress or {})
    params.update(r_attempts=attempts, r_last_error=last_error[:500])
    if due_at is None:
        params["r_ref"], params["r_claimed"] = format_ref(number), claimed_due_at
    else:
        params["r_due_at"] = due_at
    result = session.execute(_releasing(shape, due_at is not None), params)
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


@cache
def _releasing(shape: _Shape, retrying: bool) -> Update:
    """`release`'s statement for progress of this `shape`, built once: every delivery ends
    with one, and building it anew cost more than running it.

    Done (not `retrying`), it clears the due time when every event is published (as far as
    the progress brings it) and no news came since the claim, leaving it at the card's next
    redraw time (as the progress leaves it, if any); else it keeps it. The due time is the
    check that holds on PostgreSQL: there a concurrent writer's audit event is invisible to
    the statement's subquery until it commits, but its mark_due locks the row and changes
    due_at, and PostgreSQL evaluates the statement again on the row as that writer left it
    once its lock is released. On SQLite writers take turns."""
    columns = _PUBLICATIONS.c
    sets = _progress_sets(shape)
    sets.update(
        lease_owner="",
        lease_until=None,
        attempts=_parameter("attempts"),
        last_error=_parameter("last_error"),
    )
    if retrying:
        sets["due_at"] = _parameter("due_at")
    else:
        latest = (
            select(func.coalesce(func.max(AuditEventRow.seq), 0))
            .where(AuditEventRow.ref == bindparam("r_ref"))
            .scalar_subquery()
        )
        published = sets.get("published_seq", columns.published_seq)
        refresh = sets.get("refresh_at", columns.refresh_at)
        claimed = bindparam("r_claimed", type_=columns.due_at.type)
        caught_up = and_(published >= latest, columns.due_at.is_not_distinct_from(claimed))
        sets["due_at"] = case((caught_up, refresh), else_=columns.due_at)
    return _under_lease(sets)


def release_all(session: Session, owner: str) -> int:
    """On shutdown: hand every lease back so another replica takes over at once. A delivery
    cut short may have landed in Slack, so the next one looks first (attempts at least 1)."""
    attempts = col(PublicationRow.attempts)
    return leases.release_all(
        session, PublicationRow, owner, attempts=case((attempts < 1, 1), else_=attempts)
    )
