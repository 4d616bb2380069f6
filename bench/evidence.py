"""The evidence report at scale, beside the audit export of the same events.

Run from the repository root:

    python -m bench.evidence                         # 10k/100k and 100k/1M, both engines
    python -m bench.evidence --smoke                 # seconds: proves it works
    python -m bench.evidence --sizes 5000:50000,20000:200000 --engines sqlite

Each size is N changes and M audit events (CHANGES:EVENTS). What is seeded (schema made by the
real migrations, rows bulk-inserted: SQLite through executemany, PostgreSQL through COPY):
N closed changes spread over one year, each with M/N events forming a valid hash chain
(requested, submitted, reviewed, tested, approved, authorised, deployment started, outcome
recorded, closed, then gate decisions to make up the count); every tenth change an emergency
rolled back.

Each command runs as the operator runs it, a `changebot` subprocess, its wall time and peak
resident memory (RUSAGE_CHILDREN, read by a small launcher process) measured:

* `audit export --format jsonl` of every event: the baseline;
* `audit verify`: the chain alone, for context;
* `report` of the whole year;
* `audit verify --digests`: the chain and, in the same pass, hourly signed digests of the
  whole year (8,760 of them, written as the digest worker writes them, each naming the one
  before and marking every event since).

Targets: each ≤ 3× the export's time; peak RSS ≤ 300 MB and flat between the two sizes
(the largest over the smallest at most 1.25). The report verifies the chain in a second
process while it reads the changes: its peak is held against the target together with
`audit verify`'s (the two peaks added: more than they ever hold at once). The summary says
whether they were met; the exit status does not depend on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench import bulk
from bench.databases import postgres_reachable, postgres_url_option, throwaway_postgres
from bench.report import machine, postgres_version, ratio, table
from bot import signing
from storage import digests as store
from storage import migrate
from storage.db import make_engine
from storage.rows import row_values
from workflows import digests
from workflows.audit import GENESIS, AuditEntry, canonical_details, entry_hash
from workflows.model import (
    Approval,
    Change,
    ChangeDetails,
    Classification,
    Level,
    Outcome,
    PeerReview,
    Rollback,
    Stage,
    TestEvidence,
    Window,
    format_ref,
)

CHANGEBOT = Path(sys.executable).parent / "changebot"
SIZES = ((10_000, 100_000), (100_000, 1_000_000))
SMOKE_SIZES = ((100, 1_000), (300, 3_000))
TIME_TARGET, RSS_TARGET_MB, FLAT_LIMIT = 3.0, 300.0, 1.25
YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
SERVICES = ("payments", "checkout", "search", "auth", "ledger", "mobile-api", "dns", "billing")
CHANGE_COLUMNS = (
    "number", "version", "stage", "classification", "title", "requester", "implementer",
    "pull_request", "review_owed", "review_due_at", "outcome_at", "created_at", "updated_at",
    "document",
)  # fmt: skip
EVENT_COLUMNS = (
    "seq", "at", "actor", "action", "ref", "from_stage", "to_stage", "details", "prev_hash",
    "hash",
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    engine: str
    changes: int
    events: int
    command: str
    seconds: float | None
    rss_mb: float | None
    note: str = ""


# ---------------------------------------------------------------- seeding


def _change(number: int, created: datetime) -> Change:
    emergency = number % 10 == 0
    at = created + timedelta(hours=4)
    service = SERVICES[number % len(SERVICES)]
    details = ChangeDetails(
        title=f"Roll out {service} release {number}",
        classification=Classification.EMERGENCY if emergency else Classification.NORMAL,
        scope="code",
        description="Upgrade the service to the new release; includes an online migration.",
        services=(service,),
        risk=Level.MEDIUM,
        rollback=Rollback(plan="Redeploy the previous release tag."),
        window=Window(created + timedelta(hours=2), created + timedelta(hours=3)),
    )
    return Change(
        number=number,
        details=details,
        requester=f"U{number % 400:08d}",
        created_at=created,
        stage=Stage.CLOSED,
        review=PeerReview("UPEER0001", created, "Looks safe.", Level.MEDIUM),
        test_evidence=(TestEvidence("UTEST0001", created, "CI green on staging."),),
        approvals=(Approval("UAPPROVER1", created, "Go."),),
        deployment_started_at=at,
        deployed_by="pipeline:deploy",
        outcome=Outcome.ROLLED_BACK if emergency else Outcome.SUCCESSFUL,
        outcome_at=at,
        closed_at=at,
        submitted_at=created,
    )


def _story(change: Change, count: int) -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
    """(actor, action, from, to, details) of `count` events: the change's life, then gate
    decisions (pipelines asking) to make up the count."""
    d = change.details
    life: list[tuple[str, str, str, str, dict[str, Any]]] = [
        (change.requester, "requested", "request", "request",
         {"title": d.title, "classification": d.classification.value, "scope": d.scope,
          "services": list(d.services), "risk": "medium", "impact": "low", "procedure": None,
          "window": None, "rollback_given": True}),
        (change.requester, "submitted", "request", "review", {}),
        ("UPEER0001", "reviewed", "review", "test",
         {"assessment": "Looks safe.", "risk": "medium"}),
        ("UTEST0001", "tested", "test", "approve", {"evidence": "CI green on staging."}),
        ("UAPPROVER1", "approved", "approve", "approve", {"comment": "Go."}),
        ("system", "authorised", "approve", "deploy", {"approvers": ["UAPPROVER1"]}),
        ("pipeline:deploy", "deployment_started", "deploy", "deploy",
         {"deployment": f"run-{change.number}", "service": d.services[0],
          "environment": "production", "triggered_by": ""}),
        ("pipeline:deploy", "outcome_recorded", "deploy", "closed",
         {"outcome": change.outcome.value if change.outcome else "", "notes": "",
          "review_owed": False, "review_due_at": None, "owed_documents": []}),
        ("system", "closed", "deploy", "closed", {}),
    ]  # fmt: skip
    for n in range(count):
        if n < len(life):
            yield life[n]
        else:
            yield (
                "pipeline:deploy", "gate_decided", "closed", "closed",
                {"change": change.ref, "status": "allowed", "reasons": [],
                 "service": d.services[0], "environment": "production", "repository": "org/app",
                 "commit": f"{n:040x}", "run": "", "triggered_by": "", "news": n % 4 == 0},
            )  # fmt: skip


class Digests:
    """Hourly digests of the seeded chain, signed as `changebot`'s digest worker signs them:
    the year's hours share the events out evenly, by sequence number."""

    EVERY = timedelta(hours=1)

    def __init__(self, directory: Path, events: int) -> None:
        self.directory = directory
        self.public_key = directory.parent / "digest.pub"
        signing.generate(directory.parent / "digest.key", self.public_key)
        self.key = signing.load_private(directory.parent / "digest.key", source="bench")
        self.fingerprint = signing.fingerprint(self.key.public_key())
        hours = int(YEAR / self.EVERY)
        self._ends = iter([events * (h + 1) // hours for h in range(hours)])
        self._end = next(self._ends)
        self.written = 0
        self._since = 0
        self._marks: list[str] = []
        self._previous: str | None = None

    def add(self, seq: int, previous_hash: str, event_hash: str) -> None:
        """Event #`seq` chained: first the digests due before it (hours with no events of
        their own at small sizes), then those that end with it."""
        while 0 <= self._end < seq:
            self._write(seq - 1, previous_hash)
        self._marks.append(digests.mark(event_hash))
        while self._end == seq:
            self._write(seq, event_hash)

    def _write(self, seq: int, event_hash: str) -> None:
        self.written += 1
        digest = digests.Digest(
            at=YEAR_START + self.written * self.EVERY,
            seq=seq,
            hash=event_hash,
            events=seq,
            since=self._since,
            marks="".join(self._marks),
            previous=self._previous,
            key=self.fingerprint,
            every=int(self.EVERY.total_seconds()),
        )
        signed = signing.sign(self.key, digest)
        store.write(self.directory, signed)
        self._previous, self._since, self._marks = signed.signature, seq, []
        self._end = next(self._ends, -1)


def _rows(
    changes: int, events: int, signed: Digests
) -> tuple[list[tuple[Any, ...]], Iterator[tuple[Any, ...]]]:
    per_change = [events // changes + (1 if n < events % changes else 0) for n in range(changes)]
    created = [YEAR_START + YEAR * (n / changes) for n in range(changes)]
    change_rows = []
    for n in range(changes):
        change = _change(n + 1, created[n])
        v = row_values(change)
        change_rows.append(
            (n + 1, 7, *(v[c] for c in CHANGE_COLUMNS[2:-1]), json.dumps(v["document"]))
        )

    def event_rows() -> Iterator[tuple[Any, ...]]:
        seq, prev = 0, GENESIS
        for n in range(changes):
            change = _change(n + 1, created[n])
            for i, (actor, action, before, after, details) in enumerate(
                _story(change, per_change[n])
            ):
                seq += 1
                at = created[n] + timedelta(minutes=i)
                text = canonical_details(details)
                entry = AuditEntry(at, actor, action, format_ref(n + 1), before, after, details)
                digest = entry_hash(seq, prev, entry, text)
                yield (seq, at, actor, action, entry.ref, before, after, text, prev, digest)
                signed.add(seq, prev, digest)
                prev = digest
        _HEAD.update(seq=seq, hash=prev)

    return change_rows, event_rows()


_HEAD: dict[str, Any] = {}


def seed(url: str, changes: int, events: int, signed: Digests) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        change_rows, event_rows = _rows(changes, events, signed)
        bulk.insert(
            engine,
            [
                bulk.Rows("changes", CHANGE_COLUMNS, change_rows),
                bulk.Rows("audit_events", EVENT_COLUMNS, event_rows),
            ],
        )
        with engine.begin() as connection:  # the chain's head, where the seeded chain ends
            connection.execute(text("DELETE FROM audit_head"))
            connection.execute(
                text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :hash)"),
                {"seq": _HEAD["seq"], "hash": _HEAD["hash"]},
            )
    finally:
        engine.dispose()


# ---------------------------------------------------------------- measuring


#: Runs a command and prints its peak RSS in KiB. The command is started from this small
#: process, not from the benchmark's: on Linux a child's peak RSS counts what it inherited
#: at fork, and the benchmark holds the seeded rows.
LAUNCHER = (
    "import resource, subprocess, sys; "
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def measure(url: str, args: Sequence[str], cwd: Path) -> tuple[float, float, str]:
    """Run `changebot ARGS`: wall seconds, its peak RSS in MB, and its stderr's last line."""
    env = {**os.environ, "DATABASE_URL": url}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(CHANGEBOT), *args],
        env=env, cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    code, peak_kib = (int(v) for v in done.stdout.split())
    said = done.stderr.strip()
    if code != 0:
        raise RuntimeError(f"changebot {' '.join(args)} failed: {said}")
    return seconds, peak_kib / 1024, said.splitlines()[-1] if said else ""


def run_size(engine: str, url: str, changes: int, events: int, work: Path) -> list[Run]:
    started = time.perf_counter()
    (work / "digests").mkdir()
    signed = Digests(work / "digests", events)
    seed(url, changes, events, signed)
    print(f"  {engine} {changes:,} changes / {events:,} events seeded in "
          f"{time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)  # fmt: skip
    year = ("--from", f"{YEAR_START:%Y-%m-%d}", "--to", f"{YEAR_START + YEAR:%Y-%m-%d}")
    commands = [
        ("audit export --format jsonl", ["audit", "export", "--format", "jsonl", "-o", "x.jsonl"]),
        ("audit verify", ["audit", "verify"]),
        ("report (the whole year)", ["report", *year, "--output", "report.html"]),
        (
            "audit verify --digests",
            ["audit", "verify", "--digests", "digests", "--public-key", str(signed.public_key)],
        ),
    ]
    runs = []
    for name, args in commands:
        seconds, rss, _ = measure(url, args, work)
        runs.append(Run(engine, changes, events, name, seconds, rss))
    size = (work / "report.html").stat().st_size / 1e6
    runs[2] = replace(runs[2], note=f"{size:.0f} MB of HTML")
    runs[3] = replace(runs[3], note=f"{signed.written:,} digests")
    return runs


def summary(runs: list[Run]) -> tuple[str, list[str]]:
    rows, verdicts = [], []
    baseline = {(r.engine, r.events): r.seconds for r in runs if r.command.startswith("audit ex")}
    for r in runs:
        base = baseline.get((r.engine, r.events)) or 0.0
        times = ratio(r.seconds, base) if r.seconds is not None else None
        rows.append((
            r.engine, f"{r.changes:,}", f"{r.events:,}", r.command,
            "-" if r.seconds is None else round(r.seconds, 1),
            "-" if times is None else f"{times:.2f}x",
            "-" if r.rss_mb is None else round(r.rss_mb),
            r.note,
        ))  # fmt: skip
    targeted = ("report (the whole year)", "audit verify --digests")
    # The report verifies the chain in a second process beside its own: their peaks may not
    # coincide, so the report's peak plus `audit verify`'s bounds what the two hold at once.
    verifying = {(r.engine, r.events): r.rss_mb for r in runs if r.command == "audit verify"}
    for r in runs:
        if r.command in targeted and r.seconds is not None and r.rss_mb is not None:
            times = ratio(r.seconds, baseline.get((r.engine, r.events)) or 0.0)
            rss, held = r.rss_mb, f"{r.rss_mb:.0f} MB"
            if r.command.startswith("report"):
                rss += verifying.get((r.engine, r.events)) or 0.0
                held = f"{rss:.0f} MB with its verifying process"
            ok = times <= TIME_TARGET and rss <= RSS_TARGET_MB
            verdicts.append(
                f"{r.engine} {r.events:,} events: {r.command.split(' (')[0]} {times:.2f}x the "
                f"export (target ≤ {TIME_TARGET:.0f}x), {held} (≤ {RSS_TARGET_MB:.0f}): "
                f"{'met' if ok else 'NOT met'}"
            )
    for engine in dict.fromkeys(r.engine for r in runs):
        for command in targeted:
            mine = [r for r in runs if r.engine == engine and r.command == command]
            if len(mine) >= 2 and mine[0].rss_mb and mine[-1].rss_mb:
                growth = mine[-1].rss_mb / mine[0].rss_mb
                verdicts.append(
                    f"{engine}: {command.split(' (')[0]} RSS {growth:.2f}x from "
                    f"{mine[0].events:,} to {mine[-1].events:,} events (flat: ≤ {FLAT_LIMIT}x): "
                    f"{'met' if growth <= FLAT_LIMIT else 'NOT met'}"
                )
    headers = ("engine", "changes", "events", "command", "s", "vs export", "peak MB", "")
    return table(headers, rows), verdicts


def _sizes(text: str) -> list[tuple[int, int]]:
    found = []
    for part in text.split(","):
        changes, events = part.split(":")
        found.append((int(changes), int(events)))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.evidence", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sizes", type=_sizes, help="CHANGES:EVENTS,... (default 10000:100000,100000:1000000)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it works")
    parser.add_argument("--engines", default="sqlite,postgres", help="sqlite, postgres or both")
    args = parser.parse_args(argv)
    sizes = args.sizes or (SMOKE_SIZES if args.smoke else SIZES)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    postgres = postgres_url_option()
    if "postgres" in engines and not postgres_reachable(postgres):
        print(f"PostgreSQL not reachable at {postgres}: SQLite alone.", file=sys.stderr)
        engines.remove("postgres")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as scratch:
        for changes, events in sizes:
            for engine in engines:
                work = Path(scratch) / f"{engine}-{events}"
                work.mkdir()
                if engine == "sqlite":
                    runs += run_size(engine, f"sqlite:///{work / 'cb.db'}", changes, events, work)
                else:
                    with throwaway_postgres(postgres, "cb_bench_evidence") as url:
                        runs += run_size(engine, url, changes, events, work)
    shown, verdicts = summary(runs)
    print(f"bench.evidence, {datetime.now(UTC):%Y-%m-%d}: {machine()}")
    if "postgres" in engines:
        print(postgres_version(postgres))
    print(shown)
    for line in verdicts:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
