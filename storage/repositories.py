"""Repositories: the ports of workflows/ implemented with sqlmodel."""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    Dialect,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    type_coerce,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType
from sqlmodel import Session, col, select

from storage import driver
from storage.db import is_sqlite
from storage.outbox import marking_due, redraw
from storage.rows import Json, change_as_stored, change_from_row, row_values
from storage.tables import (
    AuditEventRow,
    AuditHeadRow,
    ChangeRow,
    ScheduleRow,
    compare_and_set,
)
from workflows.audit import GENESIS, AuditEntry, ChainedEntry, canonical_details, entry_hash
from workflows.errors import AlreadyRequested, EditedSince, NotFound
from workflows.model import (
    Change,
    ChangeDetails,
    Classification,
    Stage,
    Window,
    format_ref,
    parse_ref,
    seen_digest,
)
from workflows.schedule import Booking, Conflict, booking, conflicts, weeks


class SqlChanges:
    def __init__(self, session: Session, seen: tuple[int, str] | None = None) -> None:
        self.session = session
        #: Where each change read here was on the calendar when read: a save that leaves it
        #: there (most do) writes no schedule rows.
        self._booked: dict[int, _Booked | _AsRead] = {}
        #: (number, seen_digest) of what a person was shown, checked at its first read here.
        self._seen = seen
        #: Versions read ahead, with other statements (`reading_ahead`), for get_many; and
        #: the changes never cached, read whole.
        self._versions: driver.Statement | None = None
        self._whole: driver.Statement | None = None
        #: What this transaction saved, by number: the version written and the row's
        #: values, for the cache once the transaction is committed (`committed`).
        self._saved: dict[int, tuple[int, datetime, Json]] = {}
        self._database_name: str | None = None

    def add(
        self,
        details: ChangeDetails,
        requester: str,
        at: datetime,
        requested_in: str = "",
        form: str = "",
    ) -> Change:
        change = Change(
            number=0, details=details, requester=requester, created_at=at, requested_in=requested_in
        )
        row = ChangeRow(version=0, form_id=form or None, **row_values(change))
        try:
            # In a savepoint: a form sent twice at once fails on the unique form_id (on
            # PostgreSQL, once the first is committed), and this transaction goes on to say so.
            with self.session.begin_nested():
                self.session.add(row)
                self.session.flush()
        except IntegrityError:
            earlier = self._requested_with(form) if form else None
            if earlier is None:
                raise
            raise AlreadyRequested(earlier) from None
        assert row.number is not None
        change.number = row.number
        self._book(change)
        return change

    def _requested_with(self, form: str) -> int | None:
        found = self.session.execute(
            core_select(_CHANGES.c.number).where(_CHANGES.c.form_id == form)
        ).scalar_one_or_none()
        return None if found is None else int(found)

    def get(self, number: int) -> Change:
        """The change, from the cache if its version was read before (see get_many)."""
        change = self.get_many([number]).get(number)
        if change is None:
            raise NotFound("change", format_ref(number))
        if self._seen is not None and self._seen[0] == number:
            seen, self._seen = self._seen[1], None  # the step's first read: before it moves
            if seen_digest(change.details) != seen:
                raise EditedSince(change.ref)
        return change

    def save(self, change: Change) -> None:
        """Compare-and-set on the version: a write based on an older read is refused."""
        values = row_values(change)
        del values["created_at"]
        compare_and_set(
            self.session, ChangeRow, change.number, change.version, values, "change", change.ref
        )
        change.version += 1
        self._saved[change.number] = (change.version, change.created_at, values)
        self._book(change)

    def rolled_back(self) -> None:
        """What was saved here was not written after all: none of it goes into the cache."""
        self._saved = {}

    def committed(self) -> None:
        """The transaction that saved changes here is committed: each, as a read of it at
        its new version would find it, goes into the cache, so the next read of it (the
        publisher's, a gate round's) is not a read of the whole row. Only once committed:
        a version rolled back may yet be written by someone else, with other content. (A
        save inside a savepoint rolled back would still be put here: no save is made in one,
        and one that is must be forgotten with it.)"""
        saved, self._saved = self._saved, {}
        if not saved:
            return
        database = self._database()
        for number, (version, created_at, values) in saved.items():
            made = functools.partial(change_as_stored, number, version, created_at, values)
            CACHE.put_made(database, number, version, made)

    def reading_ahead(self, numbers: Sequence[int]) -> list[driver.Statement]:
        """The reads of these changes to run with other statements before this transaction's
        next `get_many` of them (or of some of them), which takes them from there
        (`driver.together`: on PostgreSQL, one round trip for all): their versions, and the
        whole of those this process has never cached (at any version: a change the gate is
        asked about for the first time), which would otherwise be read after the versions,
        in a round trip of their own."""
        self._versions, self._whole = driver.keyed(_VERSIONS, numbers), None
        database = self._database()
        unknown = [n for n in numbers if not CACHE.holds(database, n)]
        if not unknown:
            return [self._versions]
        self._whole = driver.keyed(_WHOLE_SQL, unknown)
        return [self._versions, self._whole]

    def _database(self) -> str:
        """The name of this session's database in the cache (its URL, rendered once: a gate
        round asks for it three times)."""
        if self._database_name is None:
            self._database_name = str(self.session.get_bind().engine.url)
        return self._database_name

    def get_many(self, numbers: Sequence[int]) -> dict[int, Change]:
        """The changes among `numbers`, read as the gate reads them: many, over and over (a
        pipeline waiting asks again and again). A change at a version already read is
        taken from the cache (a version is never written twice); the rest are read whole."""
        wanted = set(numbers)
        if not wanted:
            return {}
        database = self._database()
        whole, self._whole = self._whole, None
        if whole is not None and whole.rows:  # read ahead: cached at the versions they had
            read = _reading_changes(self.session.get_bind().dialect)
            for row in whole.rows:
                CACHE.put(database, read(row))
        found: dict[int, Change] = {}
        ahead, self._versions = self._versions, None  # read ahead for the next get_many only
        if ahead is None or ahead.rows is None or not wanted.issubset(ahead.params):
            ahead = driver.keyed(_VERSIONS, wanted)
            driver.together(self.session, [ahead])
        assert ahead.rows is not None
        versions = [(n, v) for n, v in ahead.rows if n in wanted]
        missing = []
        for number, version in versions:
            shared = CACHE.shared(database, number, version)
            if shared is None:
                missing.append(number)
            else:
                found[number] = self._read_shared(shared)
        if missing:
            # Plain rows, not ORM objects: nothing is written back through the session.
            whole = driver.keyed(_WHOLE_SQL, missing)
            driver.together(self.session, [whole])
            read = _reading_changes(self.session.get_bind().dialect)
            for row in whole.rows or ():
                change = read(row)
                CACHE.put(database, change)
                found[change.number] = self._read_shared(change)
        return found

    def scheduled(
        self, window: Window, *, services: Sequence[str] | None = None, occupying: bool = False
    ) -> list[Booking]:
        """The changes booked in `window` (on `services`, if given: a change that names none
        is on none of them; only those that still occupy their windows, if `occupying`),
        earliest first. Read from the weeks the window touches: the cost follows the span
        asked about, not how many changes there are."""
        named = None
        if services is not None:
            # No service's name finds the rows of a change that names none.
            named = [n for n in dict.fromkeys(s.strip().lower() for s in services) if n != _UNNAMED]
        query = _scheduled_query(is_sqlite(self.session.get_bind()), named is not None, occupying)
        params: dict[str, Any] = {
            "weeks": list(weeks(window)),
            "start": window.start,
            "end": window.end,
        }
        if named is not None:
            params["services"] = named
        bookings = [
            Booking(
                number=number,
                title=title,
                classification=_CLASSIFICATIONS[classification],
                stage=_STAGES[stage],
                services=_services(services),
                window=Window(read_moment(starts_at), read_moment(ends_at)),
                occupies=bool(occupies),
            )
            for number, services, starts_at, ends_at, occupies, title, classification, stage in (
                self.session.execute(query, params).all()
            )
        ]
        bookings.sort(key=lambda b: (b.window.start, b.number))
        return bookings

    def _read_shared(self, shared: Change) -> Change:
        """A copy of a change the cache shares (never changed), for the caller to change; what
        it is booked as is worked out from the shared one only if the copy is saved (the gate
        reads many changes, and saves few)."""
        self._booked[shared.number] = _AsRead(shared)
        # copy.copy's shallow copy, without its dispatch (the gate reads thousands a second).
        mine = object.__new__(Change)
        mine.__dict__.update(shared.__dict__)
        return mine

    def _book(self, change: Change) -> None:
        """Keep the change's schedule rows as the change now is; if it moved, the cards of
        the changes it conflicted with, or conflicts with now, are drawn again."""
        now = _booked(change)
        before_booked = self._booked.get(change.number, _UNREAD)
        if isinstance(before_booked, _AsRead):
            before_booked = _booked(before_booked.change)
        if before_booked == now:
            return
        before = self._conflicts_of(change.number)
        self.session.execute(delete(_SCHEDULE).where(_SCHEDULE.c.number == change.number))
        booked = booking(change)
        if booked is not None:
            self.session.execute(
                insert(_SCHEDULE),
                [
                    {
                        "number": change.number,
                        "service": service,
                        "week": week,
                        "starts_at": booked.window.start,
                        "ends_at": booked.window.end,
                        "occupies": booked.occupies,
                    }
                    # A change that names none (an emergency declared mid-incident) is still
                    # on the calendar: a row a week, on no service.
                    for service in booked.services or (_UNNAMED,)
                    for week in weeks(booked.window)
                ],
            )
        self._booked[change.number] = now
        after = {c.other.number for c in self.conflicts(change)}
        at = change.updated_at or change.created_at
        redraw(self.session, (before | after) - {change.number}, at)

    def conflicts(self, change: Change) -> tuple[Conflict, ...]:
        """The open changes whose windows overlap this one's on a service both name."""
        mine = booking(change)
        if mine is None or not mine.occupies:
            return ()
        found = self.scheduled(mine.window, services=mine.services, occupying=True)
        return conflicts(mine, found)

    def conflicts_among(self, changes: Iterable[Change]) -> dict[int, tuple[Conflict, ...]]:
        """The conflicts of each of `changes` that has any, as `conflicts` gives them: one
        read for the changes booked in the same window on the same services (a release
        night's or an incident's often are), not one a change, each finding all the others."""
        alike: dict[tuple[Window, tuple[str, ...]], list[Booking]] = {}
        for change in changes:
            mine = booking(change)
            if mine is not None and mine.occupies:
                alike.setdefault((mine.window, mine.services), []).append(mine)
        found: dict[int, tuple[Conflict, ...]] = {}
        for (window, services), bookings in alike.items():
            scheduled = self.scheduled(window, services=services, occupying=True)
            for mine in bookings:
                if overlapping := conflicts(mine, scheduled):
                    found[mine.number] = overlapping
        return found

    def _conflicts_of(self, number: int) -> set[int]:
        """The changes the stored schedule rows of `number` conflict with."""
        rows = self.session.execute(
            core_select(_SCHEDULE.c.service, _SCHEDULE.c.starts_at, _SCHEDULE.c.ends_at)
            .where(_SCHEDULE.c.number == number)
            .where(_SCHEDULE.c.occupies)
        ).all()
        services = [r.service for r in rows if r.service != _UNNAMED]
        if not services:  # not booked, or on no service: it conflicts with nothing
            return set()
        window = Window(_aware(rows[0].starts_at), _aware(rows[0].ends_at))
        found = self.scheduled(window, services=services, occupying=True)
        return {b.number for b in found if b.number != number}

    def linked_to(self, pull_requests: Sequence[str]) -> Change | None:
        """The newest open change that links to one of these pull requests (`owner/repo#n`)."""
        if not pull_requests:
            return None
        query = (
            select(ChangeRow)
            .where(col(ChangeRow.pull_request).in_([p.lower() for p in pull_requests]))
            .where(col(ChangeRow.stage).not_in([Stage.CLOSED.value, Stage.CANCELLED.value]))
            .order_by(col(ChangeRow.number).desc())
            .limit(1)
        )
        row = self.session.exec(query).first()
        return change_from_row(row) if row is not None else None

    def owing_review(self, person: str, limit: int) -> list[Change]:
        """Changes whose post-change review `person` owes (the implementer, else the
        requester), newest first: all of them, however many others owe."""
        owner = or_(
            col(ChangeRow.implementer) == person,
            and_(col(ChangeRow.implementer) == "", col(ChangeRow.requester) == person),
        )
        query = (
            select(ChangeRow)
            .where(col(ChangeRow.review_owed).is_(True))
            .where(owner)
            .order_by(col(ChangeRow.number).desc())
            .limit(limit)
        )
        return [change_from_row(row) for row in self.session.exec(query)]

    def decidable_by(
        self, person: str, *, approves_normal: bool, approves_emergency: bool, page: int = 200
    ) -> Iterator[Change]:
        """Open changes `person` might review or approve, newest first, read a page at a
        time: none they requested or implement, and only those an approver of their kind
        could decide. What the rules say of each (already approved by them, say) is for the
        caller to ask of the stage machine; the pages go on until it has enough."""
        conditions = [col(ChangeRow.stage) == Stage.REVIEW.value]
        if approves_normal:
            conditions.append(
                and_(
                    col(ChangeRow.classification) == Classification.NORMAL.value,
                    col(ChangeRow.stage) == Stage.APPROVE.value,
                )
            )
        if approves_emergency:
            conditions.append(
                and_(
                    col(ChangeRow.classification) == Classification.EMERGENCY.value,
                    col(ChangeRow.stage).in_(
                        [Stage.TEST.value, Stage.APPROVE.value, Stage.DEPLOY.value]
                    ),
                )
            )
        last: int | None = None
        while True:
            query = (
                select(ChangeRow)
                .where(col(ChangeRow.classification) != Classification.STANDARD.value)
                .where(col(ChangeRow.requester) != person)
                .where(col(ChangeRow.implementer) != person)
                .where(or_(*conditions))
            )
            if last is not None:
                query = query.where(col(ChangeRow.number) < last)
            rows = self.session.exec(query.order_by(col(ChangeRow.number).desc()).limit(page)).all()
            for row in rows:
                yield change_from_row(row)
            if len(rows) < page:
                return
            last = rows[-1].number

    def find(
        self,
        *,
        stages: Sequence[Stage] | None = None,
        person: str | None = None,
        review_owed: bool | None = None,
        limit: int = 50,
    ) -> list[Change]:
        query = select(ChangeRow)
        if stages is not None:
            query = query.where(col(ChangeRow.stage).in_([s.value for s in stages]))
        if person is not None:
            query = query.where(
                or_(col(ChangeRow.requester) == person, col(ChangeRow.implementer) == person)
            )
        if review_owed is not None:
            query = query.where(col(ChangeRow.review_owed) == review_owed)
        query = query.order_by(col(ChangeRow.number).desc()).limit(limit)
        return [change_from_row(row) for row in self.session.exec(query)]

    def deployed(self, period: Window, batch: int = 500) -> Iterator[Change]:
        """The changes whose outcome was recorded in `period`, in the order of their
        outcomes, read `batch` rows at a time (a year of changes is streamed, not held)."""
        query = (
            select(ChangeRow)
            .where(col(ChangeRow.outcome_at) >= period.start)
            .where(col(ChangeRow.outcome_at) < period.end)
            .order_by(col(ChangeRow.outcome_at), col(ChangeRow.number))
            .execution_options(yield_per=batch)
        )
        for row in self.session.exec(query):
            yield change_from_row(row)


class VersionCache:
    """Changes as read at a version, the latest `size` of them. A change's content at a
    version never changes (every save raises it, compare-and-set), so an entry is never
    stale, only superseded. It is shared: callers copy it before they change anything.

    An entry may be put as how to make the change (`put_made`), made at its first read: the
    gate's round that saved a change does not spend its time making what the publisher
    reads next, after the round's answers are sent."""

    def __init__(self, size: int = 2_000) -> None:
        self.size = size
        self._found: OrderedDict[tuple[str, int], Change | _Made] = OrderedDict()
        self._lock = threading.Lock()

    def shared(self, database: str, number: int, version: int) -> Change | None:
        """The change itself, shared with every other reader: to read, never to change."""
        key = (database, number)
        with self._lock:
            found = self._found.get(key)
            if found is None or found.version != version:
                return None
            self._found.move_to_end(key)
        if isinstance(found, Change):
            return found
        change = found.make()
        with self._lock:
            if self._found.get(key) is found:  # not superseded meanwhile
                self._found[key] = change
        return change

    def holds(self, database: str, number: int) -> bool:
        """Whether the change is cached at any version."""
        return (database, number) in self._found

    def put(self, database: str, change: Change) -> None:
        self._put((database, change.number), change)

    def put_made(
        self, database: str, number: int, version: int, make: Callable[[], Change]
    ) -> None:
        """The change `number` at `version` is what `make()` makes, when first read."""
        self._put((database, number), _Made(version, make))

    def _put(self, key: tuple[str, int], found: Change | _Made) -> None:
        with self._lock:
            self._found[key] = found
            self._found.move_to_end(key)
            while len(self._found) > self.size:
                self._found.popitem(last=False)


@dataclass(frozen=True)
class _Made:
    """A cached change not made yet: its version, and how to make it."""

    version: int
    make: Callable[[], Change]


#: One per process, for every database it serves (each entry names its database).
CACHE = VersionCache()


_EVENTS = cast(Table, AuditEventRow.__table__)  # type: ignore[attr-defined]
_HEAD = cast(Table, AuditHeadRow.__table__)  # type: ignore[attr-defined]
_CHANGES = cast(Table, ChangeRow.__table__)  # type: ignore[attr-defined]
_SCHEDULE = cast(Table, ScheduleRow.__table__)  # type: ignore[attr-defined]
#: The service of the rows of a change that names none: no service is called that (the form
#: drops blank names), so no service's filter finds them, and the change conflicts with
#: nothing, as workflows.schedule.conflicts says.
_UNNAMED = ""
#: What a change's schedule rows say of it: its services, window and whether it occupies it.
_Booked = tuple[tuple[str, ...], Window, bool] | None
_UNREAD: Any = object()  # a change not read here: its rows are written whatever they were


@dataclass(frozen=True)
class _AsRead:
    """A change as it was read, to work out what it was booked as when (if) it is saved."""

    change: Change


#: Enum members by stored value: a dictionary look-up is cheaper than calling the enum.
_CLASSIFICATIONS = {c.value: c for c in Classification}
#: No result processing: the driver's value as it comes.
_RAW = NullType()
_STAGES = {s.value: s for s in Stage}


def _booked(change: Change) -> _Booked:
    found = booking(change)
    return None if found is None else (found.services, found.window, found.occupies)


def _services(gathered: str) -> tuple[str, ...]:
    """The services of a change's rows, joined by commas (the form splits names on them), each
    once: none for a change booked on no service."""
    return tuple(s for s in dict.fromkeys(gathered.split(",")) if s != _UNNAMED)


def read_moment(raw: datetime | str) -> datetime:
    """A UTCDateTime read raw: the driver's datetime (PostgreSQL), or SQLite's text of UTC."""
    if isinstance(raw, str):
        return datetime.fromisoformat(raw + "+00:00")  # a quarter of .replace(tzinfo=UTC)
    if raw.tzinfo is UTC:  # already as wanted: nothing to convert
        return raw
    return _aware(raw)


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive UTC from a Core select of a UTCDateTime column."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Built once: the gate runs them for every round of questions (the first three through the
# driver: storage/driver.py).
_VERSIONS = "SELECT number, version FROM changes WHERE number IN ({})"
_HEAD_SQL = "SELECT seq, hash FROM audit_head WHERE id = 1"
_NEW_HEAD_SQL = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"


#: Changes read whole, their columns in the table's order (`_reading_changes`).
_WHOLE_SQL = (
    f"SELECT {', '.join(c.name for c in _CHANGES.columns)} FROM {_CHANGES.name} "
    "WHERE number IN ({})"
)
#: For each dialect, how a row `_WHOLE_SQL` read becomes a change (`_reading_changes`).
_CHANGE_READERS: dict[str, Callable[[Sequence[Any]], Change]] = {}


def _reading_changes(dialect: Dialect) -> Callable[[Sequence[Any]], Change]:
    """How a row of `_WHOLE_SQL`, as the driver hands it back, becomes a change: each value
    through its column's own type as this dialect reads it (a moment from SQLite's text, a
    document from JSON), as SQLAlchemy would read them."""
    found = _CHANGE_READERS.get(dialect.name)
    if found is None:
        names = [c.name for c in _CHANGES.columns]
        processors = [driver.reading(c, dialect) for c in _CHANGES.columns]

        def found(row: Sequence[Any]) -> Change:
            values = {
                name: process(value)
                for name, process, value in zip(names, processors, row, strict=True)
            }
            return change_from_row(cast(ChangeRow, SimpleNamespace(**values)))

        _CHANGE_READERS[dialect.name] = found
    return found


@functools.cache
def _scheduled_query(sqlite: bool, on_services: bool, occupying: bool) -> Select[Any]:
    """`SqlChanges.scheduled`'s statement, built once for each form it takes (the publisher
    asks it for every card it draws): the window's weeks and ends, and the services, are
    parameters."""
    # A change has a row per service and week: the database gathers them, one row a change
    # (its window and whether it occupies it are the same on every row).
    gathered = (
        func.group_concat(_SCHEDULE.c.service, ",")
        if sqlite
        # In the order the services were named (rows are written in it; SQLite's index
        # gives a week's rows in that order already).
        else func.string_agg(
            _SCHEDULE.c.service, aggregate_order_by(literal_column("','"), _SCHEDULE.c.id)
        )
    )
    query = (
        core_select(
            _SCHEDULE.c.number,
            type_coerce(gathered, _RAW),
            # Raw: read as the driver gives them, made into a window once below.
            type_coerce(func.min(_SCHEDULE.c.starts_at), _RAW),
            type_coerce(func.min(_SCHEDULE.c.ends_at), _RAW),
            func.max(sql_cast(_SCHEDULE.c.occupies, Integer)),
            _CHANGES.c.title,
            _CHANGES.c.classification,
            _CHANGES.c.stage,
        )
        .join(_CHANGES, _CHANGES.c.number == _SCHEDULE.c.number)
        .where(_SCHEDULE.c.week.in_(bindparam("weeks", expanding=True)))
        .where(_SCHEDULE.c.starts_at < bindparam("end", type_=_SCHEDULE.c.starts_at.type))
        .where(_SCHEDULE.c.ends_at > bindparam("start", type_=_SCHEDULE.c.ends_at.type))
        .group_by(_SCHEDULE.c.number, _CHANGES.c.number)
    )
    if on_services:
        query = query.where(_SCHEDULE.c.service.in_(bindparam("services", expanding=True)))
    if occupying:
        # Written as the partial index ix_schedule_occupying's predicate is (`occupies = 1`
        # on SQLite, `occupies` on PostgreSQL), so the planner can use that index.
        query = query.where(_SCHEDULE.c.occupies)
    return query


class SqlAudit:
    """Appends to the hash chain. The chain's head row is locked for the rest of the
    transaction, so writers on several replicas extend the chain one at a time. One serves
    one transaction (the unit of work makes one per `with`): it keeps the head it locked.

    `deferred`: the events are chained as they come and written together by `write()`, in
    one statement (the unit of work writes them when it commits): a transaction of many
    events (the gate answering fifty pipelines) costs one insert, not fifty.
    """

    def __init__(self, session: Session, *, deferred: bool = False) -> None:
        self.session = session
        self.deferred = deferred
        self._head: tuple[int, str] | None = None
        self._head_stored = False
        self._rows: list[tuple[Any, ...]] = []
        #: The head's read, run ahead with other statements (`reading_head`).
        self._head_read: driver.Statement | None = None
        #: The changes the events not written yet mark due (`outbox.marking_due`), at the
        #: first's moment: a step's second event (an approval's authorisation, say) has
        #: nothing to add to the first's mark.
        self._due: dict[int, datetime] = {}

    def append(self, entry: AuditEntry, *, shown: bool = True) -> None:
        seq, last = self._lock_head()
        details = canonical_details(entry.details)
        seq += 1
        hashed = entry_hash(seq, last, entry, details)
        self._rows.append(
            (
                seq,
                entry.at,
                entry.actor,
                entry.action,
                entry.ref,
                entry.from_stage,
                entry.to_stage,
                details,
                last,
                hashed,
            )
        )
        self._head = (seq, hashed)
        number = parse_ref(entry.ref) if shown else None
        if number is not None and number not in self._due:  # marked due with the events
            self._due[number] = entry.at
        if not self.deferred:
            self.write()

    def write(self) -> None:
        """Write the events appended since the last write, and the chain's new head."""
        driver.together(self.session, self.writing())

    def writing(self) -> list[driver.Statement]:
        """The statements that write the events appended since the last write and the
        chain's new head, to run with others (`driver.together`: on PostgreSQL, one round
        trip for all). The chain's first event ever writes the head row now."""
        if not self._rows or self._head is None:
            return []
        dialect = self.session.get_bind().dialect
        events = _inserting_events(dialect, self._rows)
        self._rows = []
        due, self._due = self._due, {}
        marks = [marking_due(dialect, due)] if due else []
        seq, last = self._head
        if not self._head_stored:
            self.session.execute(insert(_HEAD).values(id=1, seq=seq, hash=last))
            self._head_stored = True
            return [events, *marks]
        return [events, driver.Statement(_NEW_HEAD_SQL, (seq, last)), *marks]

    def reading_head(self) -> list[driver.Statement]:
        """The read (and lock) of the chain's head, to run with other statements before the
        first event is appended (`driver.together`: on PostgreSQL, one round trip for all);
        none if it is locked already."""
        if self._head is not None:
            return []
        self._head_read = driver.Statement(self._head_sql())
        return [self._head_read]

    def _head_sql(self) -> str:
        # Locked until the transaction ends: on SQLite, whose transactions here begin
        # IMMEDIATE (holding the write lock), by reading it; on PostgreSQL, FOR UPDATE.
        return _HEAD_SQL + ("" if is_sqlite(self.session.get_bind()) else " FOR UPDATE")

    def lock_head(self) -> None:
        """Lock the chain's head now, before this transaction locks anything else: every
        writer of the trail takes it first, so none waits on another that waits on it."""
        self._lock_head()

    def _lock_head(self) -> tuple[int, str]:
        if self._head is None:
            ahead, self._head_read = self._head_read, None
            if ahead is not None and ahead.rows is not None:
                found = ahead.rows
            else:
                found = driver.rows(self.session, self._head_sql())
            self._head_stored = bool(found)
            self._head = (int(found[0][0]), str(found[0][1])) if found else (0, GENESIS)
        return self._head


#: An event's columns, in the table's order, which is the order of SqlAudit's rows.
_EVENT_COLUMNS = tuple(column.name for column in _EVENTS.columns)
#: The events' INSERT, its rows handed to the driver's executemany as they are (no per-row
#: parameter building: the gate writes an event for every question it answers).
_INSERT_EVENTS = (
    f"INSERT INTO {_EVENTS.name} ({', '.join(_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})"
)
#: On PostgreSQL, the events as one parameter, a JSON array of rows: one statement to bind
#: and execute, where psycopg's executemany sends each row by itself, a system call and its
#: own Python each (25 events: 190 us of the interpreter against 430-600 us).
_PG = PGDialect()  # type: ignore[no-untyped-call]
_INSERT_EVENTS_JSON = (
    f"INSERT INTO {_EVENTS.name} ({', '.join(_EVENT_COLUMNS)}) "
    f"SELECT {', '.join(_EVENT_COLUMNS)} FROM json_to_recordset(?::json) AS e("
    + ", ".join(f"{c.name} {c.type.compile(dialect=_PG)}" for c in _EVENTS.columns)
    + ")"
)


def _inserting_events(dialect: Dialect, rows: list[tuple[Any, ...]]) -> driver.Statement:
    if dialect.name == "postgresql":
        moments: dict[datetime, str] = {}  # a round's events share their moment
        listed = []
        for row in rows:
            at = row[1]
            if at not in moments:
                if at.tzinfo is None:  # as the column's type refuses one (UTCDateTime)
                    raise ValueError("refusing to store a timestamp without a time zone")
                moments[at] = at.isoformat()
            listed.append(dict(zip(_EVENT_COLUMNS, (row[0], moments[at], *row[2:]), strict=True)))
        return driver.Statement(_INSERT_EVENTS_JSON, (json.dumps(listed),))
    process = driver.binding(_EVENTS.c.at, dialect)
    stored: dict[datetime, Any] = {}  # a round's events share their moment
    values: list[Any] = []
    for row in rows:
        at = row[1]
        if at not in stored:
            stored[at] = process(at)
        values.append((row[0], stored[at], *row[2:]))
    return driver.Statement(_INSERT_EVENTS, values, many=True)


#: The key under which an event read back holds what could not be read of it: a row edited
#: behind the application's back, its time or details no longer what was written.
UNREADABLE = "unreadable"
#: The time given to an event whose own cannot be read (its hash then never matches).
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def readable(raw_at: Any, raw_details: Any) -> tuple[datetime, dict[str, Any]]:
    """An event's time (read raw: see `_TRAIL`) and details; what cannot be read of them
    (edited in the database by hand) kept under `UNREADABLE`, the time then none."""
    problems: dict[str, str] = {}
    try:
        at = read_moment(raw_at)
    except (ValueError, TypeError, AttributeError):
        at, problems["at"] = _NO_TIME, str(raw_at)[:200]
    try:
        details = json.loads(raw_details)
        if not isinstance(details, dict):
            raise ValueError("not an object")
    except (ValueError, TypeError):
        details, problems["details"] = {}, str(raw_details)[:200]
    if problems:
        details = {**details, UNREADABLE: problems}
    return at, details


def from_row(row: AuditEventRow) -> ChainedEntry:
    """An event as stored. One whose time or details cannot be read (edited in the database
    by hand) is read anyway, what failed kept under `UNREADABLE`: its hash no longer matches,
    so verifying names it, and an export or a report goes on past it."""
    at, details = readable(row.at, row.details)
    entry = AuditEntry(
        at=at,
        actor=row.actor,
        action=row.action,
        ref=row.ref,
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        details=details,
    )
    return ChainedEntry(row.seq, entry, row.prev_hash, row.hash)


def read_trail(
    session: Session,
    *,
    ref: str | None = None,
    since: datetime | None = None,
    after: int = 0,
    batch: int = 1000,
) -> Iterator[ChainedEntry]:
    """The trail in chain order (from event `after` + 1), read in batches so a long trail
    never sits in memory."""
    last = after
    # Plain rows from the table, not ORM objects: nothing is written back, and the publisher
    # reads a change's news this way for every card it draws.
    query = _TRAIL.where(_EVENTS.c.seq > bindparam("last"))
    if ref is not None:
        query = query.where(_EVENTS.c.ref == ref)
    if since is not None:
        query = query.where(_EVENTS.c.at >= since)
    query = query.order_by(_EVENTS.c.seq).limit(batch)
    while True:
        rows = session.execute(query, {"last": last}).all()
        for row in rows:
            yield from_row(cast(AuditEventRow, row))
        if len(rows) < batch:  # the last batch: no need to ask for one that is empty
            return
        last = rows[-1].seq


#: How many of a change's events `reading_trail` reads at once.
TRAIL_BATCH = 1000


def reading_trail(ref: str, after: int) -> driver.Statement:
    """The read of a change's events from `after` + 1, to run with other statements
    (`driver.together`); `trail_read` gives the events it found, and any after them."""
    return driver.Statement(_TRAIL_SQL, (ref, after, TRAIL_BATCH))


def trail_went_on(statement: driver.Statement) -> bool:
    """Whether `reading_trail` found a whole batch: `trail_read` then reads the rest, after
    whatever ran with it (a change read ahead is then older than the events it explains)."""
    return statement.rows is not None and len(statement.rows) == TRAIL_BATCH


def trail_read(session: Session, statement: driver.Statement) -> list[ChainedEntry]:
    """The events `reading_trail` found, in chain order; the rest of a long trail is read now."""
    assert statement.rows is not None, "the read of the trail did not run"
    events = [from_row(cast(AuditEventRow, _EventRow(*row))) for row in statement.rows]
    if trail_went_on(statement):
        ref = statement.params[0]
        events.extend(read_trail(session, ref=ref, after=events[-1].seq, batch=TRAIL_BATCH))
    return events


#: An audit event's columns as `reading_trail` reads them, by name (its time raw, as `_TRAIL`).
_EventRow = namedtuple("_EventRow", _EVENT_COLUMNS)  # type: ignore[misc]
_TRAIL_SQL = (
    f"SELECT {', '.join(_EVENT_COLUMNS)} FROM {_EVENTS.name} "
    "WHERE ref = ? AND seq > ? ORDER BY seq LIMIT ?"
)


#: The events' columns, their time read raw: `from_row` reads it, and one edited into
#: something that is not a time is named by `audit verify`, not a traceback.
_TRAIL = core_select(
    *(type_coerce(c, _RAW).label(c.name) if c.name == "at" else c for c in _EVENTS.columns)
)


def read_head(session: Session) -> tuple[int, str]:
    """The last event written, as the chain's head row remembers it: (0, GENESIS) before the
    first. (A trail with events and no head row had it deleted: verify says so.)"""
    head = session.get(AuditHeadRow, 1)
    return (head.seq, head.hash) if head else (0, GENESIS)
