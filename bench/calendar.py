"""The change calendar at scale: the conflict check at request time and a month of
`/change calendar`, with 10,000 and 1,000,000 changes stored, on SQLite and PostgreSQL.

    python -m bench.calendar                    # 10k and 1M on SQLite and PostgreSQL
    python -m bench.calendar --smoke            # seconds: 1k and 2k, proves it works
    python -m bench.calendar --sizes 10000,1000000 --engines sqlite --repeats 200

Each is timed as the bot makes it, in a fresh read session (storage.uow.read_session):

* the conflict check a request makes (bot.queries.conflicts): a new Normal change on payments
  and ledger, tomorrow 14:00-16:00 UTC; payments is the busiest service;
* a month of `/change calendar` (bot.queries.calendar, as the command reads it): the bookings
  of the next 30 days (from today 00:00 UTC) and the freezes in force, on each local day of a
  reader in Berlin, with the threads of the first cards to link.

What is seeded (schema made by the real migrations; changes and their schedule rows
bulk-inserted, as bench.sweep and bench.gate do): the present is the same at every size, a busy
organisation's 25 changes a day with windows from 60 days ago to 60 days ahead (those ahead
open, bar the cancelled; those past mostly closed, a few never reported); the rest of the
changes are history, windows spread over the three years before, nearly all closed (3% were
cancelled, 1 in 1,000 was left open). A change names one to three services, a window lasts one
hour to a week, in working hours; each row's document is the bot's own (storage.rows), with
its window, services and title. So the month asked about holds the same changes at every size:
what grows is what is stored, and the target says the cost must not follow it.

Each engine: a database of each size, seeded, then 20 runs of each to warm up, then
`--repeats` timed runs of each, the sizes taking turns in `--rounds` rounds (so that every
size meets the same moments of a shared machine), the conflict check and the month one after
the other. Figures: p50 and p95 in ms, and the p50 as a ratio to the smallest size's on the
same engine. The plans of both queries are printed for the largest size.

Targets: each p50 <= 20 ms, and within 1.5x between the smallest and the largest size. The
summary line says whether they were met; the exit status does not depend on it.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from bench import bulk
from bench.databases import postgres_reachable, postgres_url_option, sqlite_url, throwaway_postgres
from bench.report import machine, percentile, plan, postgres_version, ratio, table
from bench.sweep import CHANGE_COLUMNS, _short
from bot import queries
from storage import migrate
from storage.db import make_engine
from storage.repositories import SqlChanges
from storage.rows import change_document
from storage.uow import read_session
from workflows.calendar import days_of
from workflows.model import (
    Approval,
    Change,
    ChangeDetails,
    Classification,
    Outcome,
    Rollback,
    Stage,
    Window,
)
from workflows.policy import load_policy
from workflows.schedule import booking, weeks

SIZES = (10_000, 1_000_000)
SMOKE_SIZES = (1_000, 2_000)
TARGET_MS = 20.0
GROWTH_LIMIT = 1.5
WARM_UP = 20
REPEATS = 200
ROUNDS = 10
PER_DAY = 25
PRESENT = timedelta(days=60)  # on each side of now
HISTORY = timedelta(days=3 * 365)
MONTH = timedelta(days=30)
SERVICES = (
    "payments",
    "checkout",
    "ledger",
    "search",
    "auth",
    "mobile-api",
    "dns",
    "billing",
    "notifications",
    "reporting",
    "inventory",
    "identity",
)
#: payments is named by about a third of the changes, the rest alike.
WEIGHTS = (12, *([3] * (len(SERVICES) - 1)))
SCHEDULE_COLUMNS = ("number", "service", "week", "starts_at", "ends_at", "occupies")


# -- the database --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A change document of one stage, its window, services and title to be filled in."""

    stage: str
    document: str
    occupies: bool
    booked: bool


@dataclass(frozen=True)
class Planned:
    number: int
    stage: str
    window: Window
    services: tuple[str, ...]


_FILL_START = datetime(2000, 1, 3, 9, tzinfo=UTC)
_FILL = Window(_FILL_START, _FILL_START + timedelta(hours=1))
_FILL_SERVICES = ("fill-in",)
_FILL_TITLE = "fill in the title"


def templates(now: datetime) -> dict[str, Template]:
    """A document for each stage a seeded change is in, made by the bot's own translation; the
    rules of workflows.schedule say whether a change in it is booked and occupies its window."""
    base = Change(
        number=1,
        details=ChangeDetails(
            title=_FILL_TITLE,
            classification=Classification.NORMAL,
            scope="code",
            description="Roll out the new release; includes a schema change applied online.",
            services=_FILL_SERVICES,
            rollback=Rollback(plan="Redeploy the previous release tag."),
            window=_FILL,
        ),
        requester="U0ALICE",
        created_at=now - timedelta(days=3),
        submitted_at=now - timedelta(days=3),
    )
    approved = (Approval("U0CAROL", now - timedelta(days=1)),)
    made = {
        "review": base,
        "approve": _with(base, stage=Stage.APPROVE),
        "deploy": _with(base, stage=Stage.DEPLOY, approvals=approved),
        "closed": _with(
            base,
            stage=Stage.CLOSED,
            approvals=approved,
            deployment_started_at=now,
            outcome=Outcome.SUCCESSFUL,
            outcome_at=now,
            closed_at=now,
        ),
        "cancelled": _with(base, stage=Stage.CANCELLED, cancel_reason="Moved to next quarter."),
    }
    found = {}
    for name, change in made.items():
        booked = booking(change)
        found[name] = Template(
            change.stage.value,
            json.dumps(change_document(change)),
            booked is not None and booked.occupies,
            booked is not None,
        )
    return found


def _with(change: Change, **fields: Any) -> Change:
    return replace(change, **fields)


@dataclass(frozen=True)
class Calendar:
    """`size` changes: the present (the same at every size) after years of history."""

    size: int
    now: datetime

    @property
    def present(self) -> int:
        return min(PER_DAY * 2 * PRESENT.days, self.size // 2)

    def planned(self) -> Iterator[Planned]:
        """Every change's stage, window and services, the same each time it is asked."""
        # The present draws from its own generator: the same changes after any history.
        past, present = random.Random(20), random.Random(21)
        history = self.size - self.present
        begins = self.now - PRESENT - HISTORY
        for number in range(1, self.size + 1):
            if number <= history:
                rng = past
                day = begins + HISTORY * ((number - 1) / history)
                stage = self._past(rng, number)
            else:
                rng = present
                day = self.now - PRESENT + 2 * PRESENT * ((number - history - 1) / self.present)
                stage = ""
            start = day.replace(hour=rng.randint(7, 18), minute=rng.choice((0, 30)), second=0)
            window = Window(start, start + _duration(rng))
            if not stage:
                stage = self._present(rng, window)
            yield Planned(number, stage, window, _services(rng))

    def _past(self, rng: random.Random, number: int) -> str:
        if number % 1000 == 7:
            return "approve"  # requested, never decided, never cancelled
        return "cancelled" if rng.random() < 0.03 else "closed"

    def _present(self, rng: random.Random, window: Window) -> str:
        chance = rng.random()
        if window.end <= self.now:
            return "cancelled" if chance < 0.05 else "deploy" if chance < 0.1 else "closed"
        if chance < 0.08:
            return "cancelled"
        return rng.choice(("review", "approve", "deploy", "deploy"))

    def tables(self) -> list[bulk.Rows]:
        made = templates(self.now)
        return [
            bulk.Rows("changes", CHANGE_COLUMNS, self._changes(made)),
            bulk.Rows("schedule", SCHEDULE_COLUMNS, self._schedule(made)),
        ]

    def _changes(self, made: dict[str, Template]) -> Iterator[tuple[Any, ...]]:
        fill_window = json.dumps([_FILL.start.isoformat(), _FILL.end.isoformat()])
        fill_services = json.dumps(list(_FILL_SERVICES))
        for p in self.planned():
            template = made[p.stage]
            title = f"Roll out {p.services[0]} release {p.number}"
            document = (
                template.document.replace(fill_window, json.dumps(_iso(p.window)))
                .replace(fill_services, json.dumps(list(p.services)))
                .replace(_FILL_TITLE, title)
            )
            created = p.window.start - timedelta(days=3)
            yield (
                p.number,
                3,
                template.stage,
                "normal",
                title,
                "U0ALICE",
                "",
                False,
                None,
                created,
                created + timedelta(hours=1),
                document,
            )

    def _schedule(self, made: dict[str, Template]) -> Iterator[tuple[Any, ...]]:
        for p in self.planned():
            template = made[p.stage]
            if not template.booked:
                continue
            for service in p.services:
                for week in weeks(p.window):
                    yield (
                        p.number,
                        service,
                        week,
                        p.window.start,
                        p.window.end,
                        template.occupies,
                    )


def _duration(rng: random.Random) -> timedelta:
    chance = rng.random()
    if chance < 0.8:
        return timedelta(hours=rng.randint(1, 3))
    if chance < 0.97:
        return timedelta(hours=rng.randint(4, 12))
    return timedelta(days=rng.randint(1, 7))


def _services(rng: random.Random) -> tuple[str, ...]:
    first = rng.choices(SERVICES, WEIGHTS)[0]
    others = rng.sample(SERVICES, rng.randint(0, 2))
    return tuple(dict.fromkeys((first, *others)))


def _iso(window: Window) -> list[str]:
    return [window.start.isoformat(), window.end.isoformat()]


# -- what is measured ------------------------------------------------------------------------------


#: What `/change calendar month` is run with: the default policy (its freezes, if any) and a
#: reader in Berlin, so days are cut at a local midnight as for a real reader.
POLICY = load_policy(None)
READER = ZoneInfo("Europe/Berlin")


def a_request(now: datetime, number: int) -> Change:
    """The change being requested: tomorrow 14:00-16:00 UTC on payments and ledger."""
    start = (now + timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)
    details = ChangeDetails(
        title="Roll out payments 4.2",
        classification=Classification.NORMAL,
        scope="code",
        services=("payments", "ledger"),
        rollback=Rollback(plan="Redeploy 4.1."),
        window=Window(start, start + timedelta(hours=2)),
    )
    return Change(number, details, "U0ALICE", now)


def month_of(now: datetime) -> Window:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(start, start + MONTH)


@dataclass
class Result:
    engine: str
    size: int
    rows: int = 0
    seed_s: float = 0.0
    conflicts: int = 0
    bookings: int = 0
    conflict_ms: list[float] = field(default_factory=list)
    month_ms: list[float] = field(default_factory=list)
    plans: list[tuple[str, list[str]]] = field(default_factory=list)


@dataclass
class Stored:
    """One engine's database of one size, seeded, and what was measured on it."""

    engine: Engine
    result: Result


def seed(engine_name: str, url: str, size: int, now: datetime) -> Stored:
    engine = make_engine(url)
    migrate.upgrade(engine)
    result = Result(engine_name, size)
    began = time.perf_counter()
    bulk.insert(engine, Calendar(size, now).tables())
    result.seed_s = time.perf_counter() - began
    with engine.connect() as connection:
        result.rows = connection.exec_driver_sql("SELECT count(*) FROM schedule").scalar_one()
    print(f"{engine_name}: {size:,} changes seeded in {result.seed_s:.0f} s", flush=True)
    return Stored(engine, result)


def measure(stored: list[Stored], now: datetime, rounds: int, repeats: int) -> None:
    """Every size in turn, `rounds` times, so that each meets the same moments of a noisy
    machine; in each turn, `repeats / rounds` conflict checks and months, one after the other."""
    for db in stored:
        _time(db, now, WARM_UP, keep=False)
    for n in range(rounds):
        for db in stored if n % 2 == 0 else reversed(stored):
            _time(db, now, max(1, repeats // rounds), keep=True)
    largest = stored[-1]
    change, month = a_request(now, largest.result.size + 1), month_of(now)
    largest.result.plans = [
        ("conflict check", plan(largest.engine, lambda c: queries.conflicts(Session(c), change))),
        ("month", plan(largest.engine, lambda c: SqlChanges(Session(c)).scheduled(month))),
    ]


def _time(db: Stored, now: datetime, runs: int, keep: bool) -> None:
    result = db.result
    change = a_request(now, result.size + 1)
    month = month_of(now)
    for _ in range(runs):
        began = time.perf_counter()
        with read_session(db.engine) as session:
            found = queries.conflicts(session, change)
        between = time.perf_counter()
        with read_session(db.engine) as session:
            shown = queries.calendar(session, POLICY, days_of(month, READER))
        ended = time.perf_counter()
        if keep:
            result.conflict_ms.append((between - began) * 1000)
            result.month_ms.append((ended - between) * 1000)
    result.conflicts = len(found)
    result.bookings = len(shown.agenda.numbers())


def run(
    engine_name: str, sizes: Sequence[int], now: datetime, options: argparse.Namespace
) -> list[Result]:
    """Seed a database of each size on the engine, then measure them in rounds."""
    with ExitStack() as stack:
        stored = []
        for size in sizes:
            url = stack.enter_context(database(engine_name, size, options.postgres_url))
            stored.append(seed(engine_name, url, size, now))
            stack.callback(stored[-1].engine.dispose)
        measure(stored, now, options.rounds, options.repeats)
        return [db.result for db in stored]


@contextmanager
def database(engine_name: str, size: int, postgres: str) -> Iterator[str]:
    if engine_name == "SQLite":
        with tempfile.TemporaryDirectory(prefix="cb_bench_") as directory:
            yield sqlite_url(Path(directory), f"calendar_{size}.db")
    else:
        with throwaway_postgres(postgres) as url:
            yield url


# -- the report ----------------------------------------------------------------------------------


def report(results: list[Result], smoke: bool) -> str:
    smallest = {r.engine: r for r in results if r.size == min(x.size for x in results)}
    rows, ratios = [], []
    for r in results:
        base = smallest[r.engine]
        growth = (
            ratio(percentile(r.conflict_ms, 50), percentile(base.conflict_ms, 50)),
            ratio(percentile(r.month_ms, 50), percentile(base.month_ms, 50)),
        )
        if r is not base:
            ratios += [(growth[0], r, "conflict check"), (growth[1], r, "month")]
        rows.append(
            [
                r.engine,
                _short(r.size),
                r.rows,
                r.conflicts,
                percentile(r.conflict_ms, 50),
                percentile(r.conflict_ms, 95),
                r.bookings,
                percentile(r.month_ms, 50),
                percentile(r.month_ms, 95),
                *growth,
                r.seed_s,
            ]
        )
    headers = [
        "engine",
        "stored",
        "schedule rows",
        "conflicts",
        "conflict p50",
        "conflict p95",
        "month bookings",
        "month p50",
        "month p95",
        "conflict x base",
        "month x base",
        "seed s",
    ]
    out = [table(headers, rows), ""]
    for r in results:
        for name, lines in r.plans:
            out.append(f"plan: {r.engine} {name} at {r.size:,} changes")
            out += ["    " + line for line in lines[:16]]
    figures = [(percentile(r.conflict_ms, 50), r, "conflict check") for r in results]
    figures += [(percentile(r.month_ms, 50), r, "month") for r in results]
    slowest = max(figures, key=lambda x: x[0])
    worst = max(ratios, key=lambda x: x[0]) if ratios else None
    summary = (
        f"calendar: worst p50 {slowest[0]:.2f} ms ({slowest[1].engine} {slowest[2]} at "
        f"{_short(slowest[1].size)})"
    )
    if worst is not None:
        summary += (
            f", worst {_short(worst[1].size)} vs {_short(min(r.size for r in results))} "
            f"{worst[0]:.2f}x ({worst[1].engine} {worst[2]})"
        )
    if smoke:
        summary += "; smoke run, targets not checked"
    else:
        met = slowest[0] <= TARGET_MS and (worst is None or worst[0] <= GROWTH_LIMIT)
        summary += f"; targets p50 <= {TARGET_MS:.0f} ms and <= {GROWTH_LIMIT}x: " + (
            "met" if met else "MISSED"
        )
    out += ["", summary]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.calendar",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="seconds-long run, no targets")
    parser.add_argument("--sizes", help="numbers of changes stored, e.g. 10000,1000000")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs of each")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="turns of the sizes")
    parser.add_argument("--engines", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--postgres-url", default=postgres_url_option())
    args = parser.parse_args(argv)
    # Stopped, it still drops its databases (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.sizes:
        sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",")})
    else:
        sizes = list(SMOKE_SIZES if args.smoke else SIZES)
    if args.smoke:
        args.repeats, args.rounds = min(args.repeats, 10), min(args.rounds, 2)
    repeats = args.repeats
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if set(engines) - {"sqlite", "postgres"}:
        parser.error(f"unknown engine in {args.engines!r}: sqlite, postgres")
    print(f"machine: {machine()}")
    print(f"SQLite {sqlite3.sqlite_version}")
    if "postgres" in engines and not postgres_reachable(args.postgres_url):
        print(f"PostgreSQL at {args.postgres_url} is not reachable: SQLite only")
        engines.remove("postgres")
    elif "postgres" in engines:
        print(postgres_version(args.postgres_url))
    now = datetime.now(UTC).replace(microsecond=0)
    results = []
    for engine_name in ("SQLite", "PostgreSQL"):
        if engine_name.lower().replace("postgresql", "postgres") in engines:
            results += run(engine_name, sizes, now, args)
    month = month_of(now)
    asked = a_request(now, 0).details.window
    assert asked is not None
    print(
        f"sizes {', '.join(_short(s) for s in sizes)}; {repeats} timed runs each; conflict "
        f"check: payments and ledger, {asked.start:%Y-%m-%d %H:%M}-{asked.end:%H:%M} UTC; "
        f"month: {month.start:%Y-%m-%d} + {MONTH.days} days"
    )
    print()
    print(report(results, args.smoke))
    return 0


if __name__ == "__main__":
    sys.exit(main())
