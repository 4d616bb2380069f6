"""The sweep at scale: one sweep's claims timed at 10k, 100k and 1,000,000 changes.

Run from the repository root:

    python -m bench.sweep                      # 10k, 100k and 1M on SQLite and PostgreSQL
    python -m bench.sweep --smoke              # seconds: 1k and 2k, proves it works
    python -m bench.sweep --sizes 10000,100000 --engines sqlite

A sweep of the bot makes two claims: the chaser's (storage/obligations.py `claim_due`, the
chaser's batch and lease) and the publisher's (storage/outbox.py `claim_due`, its batch and
lease). Each is timed separately, as the bot runs it: a new Session, the claim, its commit.

What is seeded for N changes (schema made by the real migrations, rows bulk-inserted: SQLite
through executemany, PostgreSQL through COPY):

* N changes with a realistic JSON document, spread over three years;
* 5% are emergencies with a review owed: two open obligations each (post-change review and
  retrospective approval), planned for the coming week, except 1,000 due now (at 10k that is
  every one of them);
* history: another 10% are past emergencies whose two obligations are settled (settled_at set,
  next_at in the past) — two thirds of all obligations are settled, and their share grows
  with the years kept;
* one publication per change, all delivered (due_at NULL) except 50 due now.

Audit events are not seeded: neither claim reads them.

After seeding: ANALYZE (VACUUM ANALYZE on PostgreSQL), then each claim runs 3 times to warm
up and 30 times timed, its leases released between runs (untimed). Figures: p50 and max in
ms, rows claimed, and the p50 as a ratio to the smallest size's on the same engine (the
baseline, measured in the same run). The query plan of both claims is printed for the
largest size: EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, of the
very statement `due_query` builds for the bot.

Target: every claim's p50 <= 20 ms, and no growth with the number of changes (worst ratio
<= 2.0x against the smallest size). The summary line says whether it was met; the exit
status does not depend on it. PostgreSQL runs in a throw-away database `cb_bench_<random>`
on the server at --postgres-url (dropped at the end, even on failure); when no server is
reachable SQLite runs alone, unless --engines asked for postgres explicitly.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from bench import bulk
from bench.report import machine, percentile, plan, postgres_version, ratio, table
from bot import chaser, leased, publisher
from storage import migrate, obligations, outbox
from storage.db import is_sqlite, make_engine, normalise_url

URL_VARIABLE = "CHANGEBOT_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SIZES = (10_000, 100_000, 1_000_000)
SMOKE_SIZES = (1_000, 2_000)
TARGET_MS = 20.0
GROWTH_LIMIT = 2.0
WARM_UP = 3
REPEATS = 30
OWNER = "bench-sweep"
YEARS = timedelta(days=3 * 365)


@dataclass(frozen=True)
class Load:
    """What is due besides the stored rows."""

    obligations_due: int = 1_000
    publications_due: int = 50
    repeats: int = REPEATS


@dataclass
class Result:
    engine: str
    claim: str
    size: int
    rows: int  # rows in the claimed table
    claimed: int
    p50: float
    worst: float
    seed_s: float
    plan: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- seeding


CHANGE_COLUMNS = (
    "number",
    "version",
    "stage",
    "classification",
    "title",
    "requester",
    "implementer",
    "review_owed",
    "review_due_at",
    "created_at",
    "updated_at",
    "document",
)
PUBLICATION_COLUMNS = (
    "number",
    "channel",
    "thread_ts",
    "mirror_channel",
    "mirror_ts",
    "card_version",
    "published_seq",
    "effect_index",
    "due_at",
    "attempts",
    "lease_owner",
    "lease_until",
    "last_error",
)
OBLIGATION_COLUMNS = (
    "kind",
    "number",
    "owner",
    "deadline",
    "next_at",
    "reminders",
    "escalations",
    "snoozed_until",
    "settled_at",
    "lease_owner",
    "lease_until",
)
SERVICES = ("payments", "checkout", "search", "auth", "ledger", "mobile-api", "dns", "billing")
PEOPLE = tuple(f"U{n:08d}" for n in range(400))


def _documents(count: int, rng: random.Random) -> list[str]:
    """A few dozen realistic change documents (as stored), cycled through the rows."""
    docs = []
    for n in range(count):
        emergency = n % 2 == 0
        at = "2025-06-01T10:00:00+00:00"
        docs.append(
            json.dumps(
                {
                    "details": {
                        "title": f"Roll out {rng.choice(SERVICES)} release {n}",
                        "classification": "emergency" if emergency else "normal",
                        "scope": f"{rng.choice(SERVICES)} in eu-west-1 and us-east-1",
                        "description": "Upgrade the service to the new release; "
                        "includes a schema change applied online. " * 2,
                        "services": rng.sample(SERVICES, 2),
                        "risk": rng.choice(("low", "medium", "high")),
                        "impact": rng.choice(("low", "medium", "high")),
                        "rollback": {
                            "plan": "Redeploy the previous release tag.",
                            "not_reversible": "",
                        },
                        "window": [at, "2025-06-01T11:00:00+00:00"],
                        "links": {
                            "pull_request": f"https://github.example/org/repo/pull/{n}",
                            "ticket": f"OPS-{n}",
                            "incident": f"INC-{n}" if emergency else "",
                        },
                        "procedure_id": "",
                        "implementer": rng.choice(PEOPLE),
                    },
                    "review": {
                        "by": rng.choice(PEOPLE),
                        "at": at,
                        "assessment": "Looks safe; rollback tested in staging.",
                        "risk": "low",
                        "kind": "peer",
                    },
                    "test_evidence": [
                        {"by": rng.choice(PEOPLE), "at": at, "evidence": "CI green", "kind": "ci"}
                    ],
                    "approvals": [
                        {"by": rng.choice(PEOPLE), "at": at, "comment": "", "kind": "approval"}
                    ],
                    "rejections": [],
                    "deployment_started_at": at,
                    "deployed_by": rng.choice(PEOPLE),
                    "outcome": "succeeded",
                    "outcome_notes": "",
                    "outcome_at": at,
                    "post_change_review": None,
                    "owed_documents": [],
                    "cancel_reason": "",
                    "closed_at": at,
                    "requested_in": "C0CHANGES",
                    "submitted_at": at,
                    "break_glass_at": at if emergency else None,
                    "break_glass_reason": "customer-facing outage" if emergency else "",
                    "retro_approval_owed": False,
                    "closed_without_review": False,
                }
            )
        )
    return docs


def _is_open_emergency(number: int) -> bool:
    return number % 20 == 0


def _is_past_emergency(number: int) -> bool:
    return number % 10 == 5


@dataclass(frozen=True)
class Seed:
    size: int
    now: datetime
    load: Load

    def created(self, number: int) -> datetime:
        return self.now - YEARS * ((self.size - number + 1) / self.size)

    def changes(self) -> Iterator[tuple[Any, ...]]:
        rng = random.Random(6)
        docs = _documents(64, rng)
        for number in range(1, self.size + 1):
            created = self.created(number)
            emergency = _is_open_emergency(number) or _is_past_emergency(number)
            owed = _is_open_emergency(number)
            yield (
                number,
                7,
                "closed" if number < self.size - 200 else "approve",
                "emergency" if emergency else ("normal" if number % 3 else "standard"),
                f"Change {number}: roll out {SERVICES[number % len(SERVICES)]}",
                PEOPLE[number % len(PEOPLE)],
                PEOPLE[(number * 7) % len(PEOPLE)],
                owed,
                created + timedelta(days=5) if owed else None,
                created,
                created + timedelta(hours=3),
                docs[number % len(docs)],
            )

    def publications(self) -> Iterator[tuple[Any, ...]]:
        due_from = self.size - self.load.publications_due
        for number in range(1, self.size + 1):
            due = (
                self.now - timedelta(seconds=self.size - number + 1) if number > due_from else None
            )
            yield (
                number,
                "C0CHANGES",
                f"{1_700_000_000 + number}.000100",
                "C0INCIDENT" if _is_open_emergency(number) else "",
                f"{1_700_000_000 + number}.000200" if _is_open_emergency(number) else "",
                7,
                12,
                0,
                due,
                0,
                "",
                None,
                "",
            )

    def obligations(self) -> Iterator[tuple[Any, ...]]:
        rng = random.Random(7)
        open_count = 2 * (self.size // 20)
        due = min(self.load.obligations_due, open_count)
        # Which open obligations are due: spread evenly over all of them.
        due_every = open_count / due if due else 0.0
        next_due = 0.0
        index = 0
        for number in range(1, self.size + 1):
            if _is_open_emergency(number):
                created = self.created(number)
                for kind in ("post_change_review", "retrospective_approval"):
                    if due and index >= next_due and next_due < open_count:
                        next_at = self.now - timedelta(seconds=rng.randint(1, 6 * 3600))
                        next_due += due_every
                    else:
                        next_at = self.now + timedelta(seconds=rng.randint(60, 7 * 86400))
                    index += 1
                    yield (
                        kind,
                        number,
                        PEOPLE[number % len(PEOPLE)],
                        created + timedelta(days=5),
                        next_at,
                        rng.randint(0, 6),
                        rng.randint(0, 2),
                        None,
                        None,
                        "",
                        None,
                    )
            elif _is_past_emergency(number):
                created = self.created(number)
                for kind in ("post_change_review", "retrospective_approval"):
                    settled = created + timedelta(hours=rng.randint(2, 240))
                    yield (
                        kind,
                        number,
                        PEOPLE[number % len(PEOPLE)],
                        created + timedelta(days=5),
                        settled - timedelta(hours=rng.randint(1, 24)),
                        rng.randint(0, 4),
                        0,
                        None,
                        settled,
                        "",
                        None,
                    )


def _seed_sqlite(engine: Engine, seed: Seed) -> None:
    bulk.insert(engine, _tables(seed))


def _seed_postgres(engine: Engine, seed: Seed) -> None:
    # One database serves every size here: the last size's rows go first.
    with engine.begin() as connection:
        connection.exec_driver_sql("TRUNCATE publications, obligations, changes RESTART IDENTITY")
    bulk.insert(engine, _tables(seed))


def _tables(seed: Seed) -> list[bulk.Rows]:
    return [
        bulk.Rows("changes", CHANGE_COLUMNS, seed.changes()),
        bulk.Rows("publications", PUBLICATION_COLUMNS, seed.publications()),
        bulk.Rows("obligations", OBLIGATION_COLUMNS, seed.obligations()),
    ]


# ---------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Claim:
    name: str
    table: str
    run: Callable[[Session, datetime], list[Any]]
    release: Callable[[Session, list[Any]], None]
    query: Callable[[datetime, bool], Any]


def _release(session: Session, key: Any, keys: list[int]) -> None:
    """Give the claimed rows back by key: costs what was claimed (release_all scans)."""
    session.execute(
        update(key.class_)
        .where(key.in_(keys))
        .values(lease_owner="", lease_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


CLAIMS = (
    Claim(
        "chaser",
        "obligations",
        lambda s, now: obligations.claim_due(s, OWNER, now, leased.LEASE, chaser.BATCH),
        lambda s, claimed: _release(s, obligations.ObligationRow.id, [c.id for c in claimed]),
        lambda now, skip: obligations.due_query(now, chaser.BATCH, skip_locked=skip),
    ),
    Claim(
        "publisher",
        "publications",
        lambda s, now: outbox.claim_due(s, OWNER, now, leased.LEASE, publisher.BATCH),
        lambda s, claimed: _release(s, outbox.PublicationRow.number, [p.number for p in claimed]),
        lambda now, skip: outbox.due_query(now, publisher.BATCH, skip_locked=skip),
    ),
)


def _time_claim(
    engine: Engine, claim: Claim, now: datetime, repeats: int
) -> tuple[list[float], int]:
    times: list[float] = []
    claimed = 0
    for n in range(WARM_UP + repeats):
        start = time.perf_counter()
        with Session(engine) as session:
            rows = claim.run(session, now)
        elapsed = (time.perf_counter() - start) * 1000
        with Session(engine) as session:
            claim.release(session, rows)
        if n >= WARM_UP:
            times.append(elapsed)
            claimed = len(rows)
    return times, claimed


def _plan(engine: Engine, claim: Claim, now: datetime) -> list[str]:
    """The plan of the very statement the claim runs."""
    skip_locked = not is_sqlite(engine)
    return plan(engine, lambda c: c.execute(claim.query(now, skip_locked)).fetchall())


def _count(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())


def measure(
    engine: Engine, seed: Seed, seeder: Callable[[Engine, Seed], None], label: str, explain: bool
) -> list[Result]:
    start = time.perf_counter()
    seeder(engine, seed)
    seed_s = time.perf_counter() - start
    results = []
    for claim in CLAIMS:
        times, claimed = _time_claim(engine, claim, seed.now, seed.load.repeats)
        results.append(
            Result(
                label,
                claim.name,
                seed.size,
                _count(engine, claim.table),
                claimed,
                percentile(times, 50),
                max(times),
                seed_s,
                _plan(engine, claim, seed.now) if explain else [],
            )
        )
    return results


# ---------------------------------------------------------------- engines


def run_sqlite(sizes: Sequence[int], load: Load, now: datetime) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="cb_bench_") as directory:
        for size in sizes:
            path = Path(directory) / f"sweep_{size}.db"
            engine = make_engine(f"sqlite:///{path}")
            try:
                migrate.upgrade(engine)
                results += measure(
                    engine, Seed(size, now, load), _seed_sqlite, "sqlite", size == max(sizes)
                )
            finally:
                engine.dispose()
                path.unlink(missing_ok=True)
    return results


class PostgresUnreachable(Exception):
    pass


def _admin(url: URL) -> Engine:
    """An autocommit engine on the server, for CREATE and DROP DATABASE."""
    for database in (url.database, "postgres"):
        admin = create_engine(
            url.set(database=database),
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 3},
        )
        try:
            with admin.connect():
                return admin
        except OperationalError as error:
            admin.dispose()
            if "does not exist" not in str(error):
                raise PostgresUnreachable(str(error).splitlines()[0]) from error
    raise PostgresUnreachable(f"no database to connect to at {url.host}")


def run_postgres(url: URL, sizes: Sequence[int], load: Load, now: datetime) -> list[Result]:
    admin = _admin(url)
    print(postgres_version(url.set(drivername="postgresql").render_as_string(hide_password=False)))
    name = f"cb_bench_{secrets.token_hex(6)}"
    results = []
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
        try:
            migrate.upgrade(engine)
            for size in sizes:
                results += measure(
                    engine, Seed(size, now, load), _seed_postgres, "postgres", size == max(sizes)
                )
        finally:
            engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return results


# ---------------------------------------------------------------- report


def report(results: list[Result], smoke: bool) -> str:
    baseline = {
        (r.engine, r.claim): r.p50 for r in results if r.size == min(x.size for x in results)
    }
    rows = []
    worst: tuple[float, Result] | None = None
    for r in results:
        growth = ratio(r.p50, baseline[(r.engine, r.claim)])
        if worst is None or growth > worst[0]:
            worst = (growth, r)
        rows.append(
            [r.engine, r.claim, r.size, r.rows, r.claimed, r.p50, r.worst, growth, r.seed_s]
        )
    headers = [
        "engine",
        "claim",
        "changes",
        "rows",
        "claimed",
        "p50 ms",
        "max ms",
        "x base",
        "seed s",
    ]
    out = [table(headers, rows), ""]
    for r in results:
        if r.plan:
            out.append(f"plan: {r.engine} {r.claim} at {r.size:,} changes")
            out += ["    " + line for line in r.plan[:12]]
    assert worst is not None
    slowest = max(results, key=lambda r: r.p50)
    base = min(r.size for r in results)
    summary = (
        f"sweep: claim p50 <= {slowest.p50:.2f} ms ({slowest.engine} {slowest.claim} at "
        f"{slowest.size:,}), worst ratio {worst[0]:.1f}x vs {_short(base)} "
        f"({worst[1].engine} {worst[1].claim} at {_short(worst[1].size)}); "
    )
    if smoke:
        summary += "smoke run, target not checked"
    else:
        met = slowest.p50 <= TARGET_MS and worst[0] <= GROWTH_LIMIT
        summary += f"target <= {TARGET_MS:.0f} ms and <= {GROWTH_LIMIT:.1f}x: " + (
            "met" if met else "MISSED"
        )
    out += ["", summary]
    return "\n".join(out)


def _short(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return str(size)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sweep", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--smoke", action="store_true", help="seconds-long run, no thresholds")
    parser.add_argument("--sizes", help="numbers of changes, e.g. 10000,100000,1000000")
    parser.add_argument("--engines", help="sqlite,postgres (default: both)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(URL_VARIABLE) or DEFAULT_POSTGRES_URL,
        help=f"server for the throw-away database (default ${URL_VARIABLE} or "
        f"{DEFAULT_POSTGRES_URL})",
    )
    args = parser.parse_args(argv)

    if args.sizes:
        sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",")})
    else:
        sizes = list(SMOKE_SIZES if args.smoke else SIZES)
    engines = [e.strip() for e in (args.engines or "sqlite,postgres").split(",") if e.strip()]
    unknown = set(engines) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(sorted(unknown))}")
    load = Load(obligations_due=20, publications_due=10, repeats=5) if args.smoke else Load()
    now = datetime.now(UTC).replace(microsecond=0)
    url = make_url(normalise_url(args.postgres_url))

    print(machine())
    results: list[Result] = []
    if "sqlite" in engines:
        import sqlite3

        print(f"SQLite {sqlite3.sqlite_version}")
        results += run_sqlite(sizes, load, now)
    if "postgres" in engines:
        try:
            results += run_postgres(url, sizes, load, now)
        except PostgresUnreachable as error:
            where = url.render_as_string(hide_password=True)
            print(f"PostgreSQL unreachable at {where}: {error}", file=sys.stderr)
            if args.engines:
                return 1
            print(f"PostgreSQL unreachable at {where}: SQLite only")
    print(
        f"sizes {', '.join(_short(s) for s in sizes)}; due now: {load.obligations_due} "
        f"obligations, {load.publications_due} publications; claims: chaser batch "
        f"{chaser.BATCH}, publisher batch {publisher.BATCH}; {load.repeats} timed runs each"
    )
    print()
    print(report(results, args.smoke))
    return 0


if __name__ == "__main__":
    sys.exit(main())
