"""The deploy gate under load: changebot's `POST /api/v1/gate` against a bare endpoint.

    python -m bench.gate [--smoke] [--sizes 10000,1000000] [--requests 4000] [--rounds 3]

50 pipelines (`--concurrency`) ask the gate at once, over kept-alive connections, from a
process of their own (`bench.load --bearer`), about changes in a database of 10,000 and of
1,000,000 (`--sizes`), on SQLite and on PostgreSQL. Most questions come again, as a pipeline
waiting with `changebot gate --wait` asks again and again: 98 in 100 are about 600 changes
(two thirds authorised in their window: allowed; a sixth awaiting approval; a sixth closed:
prevented), spread over the whole table, asked once each before the measured rounds; 2 in
100 are about a change no pipeline asked about before (its first answer is news: the card is
updated and the thread told, by the publisher, in the same process). Every answer is decided
and recorded in the audit trail before it is sent.

The baseline (`bench.bare_gate`) is an aiohttp endpoint that checks the bearer token and
answers a fixed JSON: what any HTTP service costs. It is served throughout and gets each
round's requests just before changebot, so both meet the same moment of a noisy machine;
each app runs on a core of its own (`bench.serving.pin_apart`). Every figure is the median
of `--rounds` rounds. Beside the times, each app's CPU per answer (all its threads, read from
the kernel; for changebot, until what the round's news caused is shown in Slack), and the
baseline's over changebot's ("CPU ratio"): on a core of its own an app answers at most one
over its CPU per answer, and the kernel counts it whatever else the machine was doing, a
steadier figure than requests a second on a noisy machine.

Then GitHub's webhook: `--deliveries` signed `deployment_protection_rule` deliveries, 20 at
a time, with GitHub's API stand-in holding every call 5 seconds: the webhook's answer must
not wait for GitHub.

Targets: p99 <= 2x the baseline's; throughput >= 0.5x; at 1M changes within 1.2x of 10k
(p99 and throughput); the webhook's p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import Engine
from sqlmodel import Session

from bench import bulk
from bench.databases import postgres_reachable, postgres_url_option, sqlite_url, throwaway_postgres
from bench.load import Request
from bench.report import machine, postgres_version, ratio, table
from bench.serving import (
    Rounds,
    Run,
    Served,
    all_shown,
    cpu_seconds,
    pin_apart,
    pinning,
    send_load,
    wait_until_up,
    workdir,
)
from bench.sweep import CHANGE_COLUMNS, PUBLICATION_COLUMNS, _short
from bot import memory
from standin import SlackStandIn
from standin.github import (
    APP_ID,
    WEBHOOK_SECRET,
    GithubStandIn,
    new_private_key,
    protection_rule_request,
    sign,
)
from storage import migrate, tokens
from storage.db import make_engine
from storage.rows import row_values
from tests.e2e.harness import BotProcess, free_port, policy_toml, workspace
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
from workflows.tokens import Scope

P99_TARGET = 2.0
THROUGHPUT_TARGET = 0.5
SCALE_TARGET = 1.2
WEBHOOK_TARGET_MS = 100.0
SIZES = (10_000, 1_000_000)
POOL = 600
REPEAT_SHARE = 0.98
SERVICE = "payments"
CHANNEL = "C0CHANGES"
GITHUB_POLICY = """
[[gate.github]]
repository = "acme/payments"
environment = "production"
services = ["payments"]
"""


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...]
    requests: int
    concurrency: int
    rounds: int
    deliveries: int
    github_delay: float
    postgres_url: str | None


@dataclass
class Result(Rounds):
    engine: str = ""
    size: int = 0


# -- the database: N changes, some authorised now, some awaiting, the rest closed ----------------


@dataclass(frozen=True)
class Table:
    """Which change is what, spread evenly over `size` numbers whatever the size."""

    size: int
    now: datetime

    def kind(self, number: int) -> str:
        if number % max(1, self.size // 2_000) == 1:
            return "authorised"
        if number % max(1, self.size // 200) == 2:
            return "awaiting"
        return "closed"

    def numbers(self, kind: str) -> list[int]:
        return [n for n in range(1, self.size + 1) if self.kind(n) == kind]

    def documents(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """(stage, the row's other columns) of each kind, made by the real row translation."""
        window = Window(self.now - timedelta(hours=1), self.now + timedelta(days=2))
        base = Change(
            number=1,
            details=ChangeDetails(
                title="Roll out payments 4.2",
                classification=Classification.NORMAL,
                scope="code",
                description="The new release of the payments API.",
                services=(SERVICE, "ledger"),
                rollback=Rollback(plan="Redeploy 4.1."),
                window=window,
            ),
            requester="U0ALICE",
            created_at=self.now - timedelta(days=1),
            submitted_at=self.now - timedelta(days=1),
        )
        approval = (Approval("U0CAROL", self.now - timedelta(hours=2)),)
        authorised = _with(base, stage=Stage.DEPLOY, approvals=approval)
        awaiting = _with(base, stage=Stage.APPROVE)
        closed = _with(
            base,
            stage=Stage.CLOSED,
            approvals=approval,
            deployment_started_at=self.now - timedelta(days=300),
            outcome=Outcome.SUCCESSFUL,
            outcome_at=self.now - timedelta(days=300),
            closed_at=self.now - timedelta(days=300),
        )
        made = {"authorised": authorised, "awaiting": awaiting, "closed": closed}
        return {kind: (c.stage.value, row_values(c)) for kind, c in made.items()}

    def changes(self) -> Iterator[tuple[Any, ...]]:
        docs = {
            k: (stage, json.dumps(v["document"]), v) for k, (stage, v) in self.documents().items()
        }
        for number in range(1, self.size + 1):
            stage, document, values = docs[self.kind(number)]
            yield (
                number,
                3,
                stage,
                "normal",
                f"Change {number}: roll out {SERVICE}",
                "U0ALICE",
                "",
                False,
                None,
                values["created_at"],
                values["created_at"],
                document,
            )

    def publications(self) -> Iterator[tuple[Any, ...]]:
        for number in range(1, self.size + 1):
            yield (number, CHANNEL, card_ts(number), "", "", 3, 0, 0, None, 0, "", None, "")


def card_ts(number: int) -> str:
    """Where the seeded change's card is in Slack: the publications say so, and the Slack
    stand-in holds a card there (`cards_in_slack`), so news updates it as in production."""
    return f"{1_700_000_000 + number}.000100"


def cards_in_slack(slack: SlackStandIn, numbers: Iterable[int]) -> None:
    """The cards of the changes the load asks about, as the bot posted them long ago: a
    card that Slack did not have would be posted again (with a note that it was deleted),
    which is not what news costs in a workspace whose cards are where they were put."""
    bot = slack.workspace.bot_user_id
    for number in numbers:
        card = {"type": "message", "user": bot, "text": f"CHG-{number:04d}", "blocks": []}
        slack.state.messages.seed(CHANNEL, card_ts(number), card)


def _with(change: Change, **fields: Any) -> Change:
    return replace(change, **fields)


def seed(engine: Engine, changes: Table) -> None:
    bulk.insert(
        engine,
        [
            bulk.Rows("changes", CHANGE_COLUMNS, changes.changes()),
            bulk.Rows("publications", PUBLICATION_COLUMNS, changes.publications()),
        ],
    )


def a_token(engine: Engine, now: datetime) -> str:
    with Session(engine) as session:
        _, secret = tokens.create(
            session, "bench", frozenset({Scope.GATE, Scope.DEPLOYMENTS}), "bench", now
        )
    return secret


# -- the load -----------------------------------------------------------------------------------


def questions(changes: Table, count: int, rng: random.Random, fresh: list[int]) -> list[Request]:
    """`count` questions: `REPEAT_SHARE` of them from the pool asked before, the rest about
    a change never asked about (taken from `fresh`)."""
    pool = pool_of(changes)
    asked = []
    for _ in range(count):
        number = rng.choice(pool) if rng.random() < REPEAT_SHARE or not fresh else fresh.pop()
        asked.append(_question(number, rng.randrange(50)))
    return asked


def pool_of(changes: Table) -> list[int]:
    rng = random.Random(1)
    authorised = changes.numbers("authorised")
    awaiting = changes.numbers("awaiting")
    closed = rng.sample(range(1, changes.size + 1), POOL // 6 * 3)
    closed = [n for n in closed if changes.kind(n) == "closed"][: POOL // 6]
    return authorised[: POOL * 2 // 3] + awaiting[: POOL // 6] + closed


def fresh_of(changes: Table) -> list[int]:
    return changes.numbers("authorised")[POOL * 2 // 3 :]


def _question(number: int, pipeline: int) -> Request:
    body = {
        "change": f"CHG-{number}",
        "service": SERVICE,
        "environment": "production",
        "run_url": f"https://ci.example.com/pipelines/{pipeline}",
    }
    return Request("gate", "application/json", json.dumps(body).encode())


# -- the apps --------------------------------------------------------------------------------


@asynccontextmanager
async def bare_gate(work: Path, token: str) -> AsyncIterator[Served]:
    port = free_port()
    log = (work / f"bare-gate-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_gate", "--port", str(port), "--token", token],
        env=dict(os.environ),
        stdout=log,
        stderr=log,
    )
    try:
        await wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
        yield Served("bare endpoint", f"http://127.0.0.1:{port}/api/v1/gate", process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


# -- measuring ----------------------------------------------------------------------------------


async def measure(options: Options) -> tuple[list[Result], list[Result]]:
    engines: list[tuple[str, str | None]] = [("SQLite", None)]
    if options.postgres_url:
        engines.append(("PostgreSQL", options.postgres_url))
    baseline = Result("bare endpoint (baseline)")
    results: list[Result] = [baseline]
    webhooks: list[Result] = []
    with workdir() as work:
        key = work / "github-app.pem"
        key.write_bytes(new_private_key())
        async with GithubStandIn(key.read_bytes()) as github:
            env = {
                "GITHUB_APP_ID": APP_ID,
                "GITHUB_APP_PRIVATE_KEY": str(key),
                "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "GITHUB_API_URL": github.url,
            }
            for engine, server in engines:
                for size in options.sizes:
                    with _database(engine, server, work, size) as url:
                        async with _served(url, work, env) as (bot, slack):
                            result = await _gate_rounds(
                                engine, size, url, options, work, baseline, bot, slack
                            )
                            results.append(result)
                            if size == min(options.sizes):  # the same process, after
                                webhooks.append(await _webhooks(engine, options, github, bot))
    return results, webhooks


@asynccontextmanager
async def _served(
    url: str, work: Path, env: dict[str, str]
) -> AsyncIterator[tuple[BotProcess, SlackStandIn]]:
    """changebot on `url`, not started (the database is seeded first), with GitHub configured
    (its webhook is measured last), and stopped at the end; and its Slack."""
    policy = policy_toml(extra=GITHUB_POLICY)
    async with SlackStandIn(workspace()) as slack:
        bot = BotProcess(slack, work, database_url=url, policy=policy, env=env)
        try:
            yield bot, slack
        finally:
            bot.stop()


async def _gate_rounds(
    engine_name: str,
    size: int,
    url: str,
    options: Options,
    work: Path,
    baseline: Result,
    bot: BotProcess,
    slack: SlackStandIn,
) -> Result:
    engine = make_engine(url)
    now = datetime.now().astimezone()
    changes = Table(size, now)
    started = time.monotonic()
    migrate.upgrade(engine)
    seed(engine, changes)
    token = a_token(engine, now)
    engine.dispose()
    print(
        f"{engine_name}: {size:,} changes seeded in {time.monotonic() - started:.0f} s", flush=True
    )
    rng = random.Random(size)
    fresh = fresh_of(changes)
    rng.shuffle(fresh)
    cards_in_slack(slack, [*pool_of(changes), *fresh])
    warmup = [_question(n, i % 50) for i, n in enumerate(pool_of(changes))]
    loads = [questions(changes, options.requests, rng, fresh) for _ in range(options.rounds)]
    result = Result(f"changebot ({engine_name}, {_short(size)})", engine=engine_name, size=size)
    await bot.start()
    await all_shown(bot, timeout=600)
    async with bare_gate(work, token) as bare:
        assert bot.process is not None
        gate_url = bot.url + "/api/v1/gate"
        for served in (bare.pid, bot.process.pid):
            pin_apart(served)
        await send_load(bare.url, warmup, options.concurrency, work, bearer=token)
        await send_load(gate_url, warmup, options.concurrency, work, bearer=token)
        await all_shown(bot, timeout=600)
        for load in loads:
            began = cpu_seconds(bare.pid)
            run = await send_load(bare.url, load, options.concurrency, work, bearer=token)
            baseline.runs.append(replace(run, cpu=cpu_seconds(bare.pid) - began))
            began = cpu_seconds(bot.process.pid)
            run = await send_load(gate_url, load, options.concurrency, work, bearer=token)
            await all_shown(bot, timeout=600)  # what the news caused is shown before the next
            # The news shown is work the round caused: its CPU counts.
            result.runs.append(replace(run, cpu=cpu_seconds(bot.process.pid) - began))
    return result


async def _webhooks(
    engine_name: str, options: Options, github: GithubStandIn, bot: BotProcess
) -> Result:
    """GitHub's deliveries acknowledged while GitHub's API holds every call."""
    name = f"webhook ({engine_name}), GitHub API +{options.github_delay:g}s"
    result = Result(name, engine=engine_name)
    github.delay = options.github_delay
    try:
        result.runs.append(await _deliver(bot.url + "/github/webhook", options.deliveries))
    finally:
        github.delay = 0.0
    return result


async def _deliver(url: str, count: int, concurrency: int = 20) -> Run:
    bodies = [
        json.dumps(protection_rule_request("acme/payments", "production", 10_000 + i)).encode()
        for i in range(count)
    ]
    queue = list(enumerate(bodies))
    samples: list[tuple[str, int, float]] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            i, body = queue.pop()
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "deployment_protection_rule",
                "X-GitHub-Delivery": f"bench-{i}",
                "X-Hub-Signature-256": sign(body),
            }
            began = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                samples.append(("webhook", response.status, time.perf_counter() - began))

    began = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    wall = time.perf_counter() - began
    # The webhook answers 202: count it as answered.
    return Run(wall, [(k, 200 if s == 202 else s, t) for k, s, t in samples])


@contextmanager
def _database(engine: str, server: str | None, work: Path, size: int) -> Iterator[str]:
    if server is None:
        path = work / f"gate-{size}.db"
        try:
            yield sqlite_url(work, path.name)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        with throwaway_postgres(server) as url:
            yield url


# -- the report ----------------------------------------------------------------------------------


def report(
    results: list[Result], webhooks: list[Result], options: Options, smoke: bool
) -> tuple[str, bool]:
    base = results[0]
    base_p99, base_rps = base.p(99), base.throughput
    rows = []
    for r in results:
        rows.append(
            [
                r.name,
                r.p(50),
                r.p(95),
                r.p(99),
                r.throughput,
                ratio(r.p(99), base_p99),
                ratio(r.throughput, base_rps),
                r.cpu_per_request * 1e6,
                ratio(base.cpu_per_request, r.cpu_per_request),
                r.each_p99(),
                r.failures,
            ]
        )
    headers = [
        "app",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "req/s",
        "p99 ratio",
        "req/s ratio",
        "CPU us/req",
        "CPU ratio",
        "p99 of each round",
        "not 200",
    ]
    print(table(headers, rows))
    print()
    scale_rows, scales = [], []
    for engine in sorted({r.engine for r in results[1:]}):
        mine = sorted((r for r in results[1:] if r.engine == engine), key=lambda r: r.size)
        small, large = mine[0], mine[-1]
        p99_growth = ratio(large.p(99), small.p(99))
        rps_drop = ratio(small.throughput, large.throughput)
        scales += [p99_growth, rps_drop]
        scale_rows.append(
            [engine, f"{_short(small.size)} -> {_short(large.size)}", p99_growth, rps_drop]
        )
    print(table(["engine", "changes", "p99 growth", "req/s drop"], scale_rows))
    print()
    print(
        table(
            ["webhook", "p50 ms", "p99 ms", "max ms", "deliveries", "not 2xx"],
            [
                [
                    w.name,
                    w.p(50),
                    w.p(99),
                    w.p(100),
                    sum(len(r.samples) for r in w.runs),
                    w.failures,
                ]
                for w in webhooks
            ],
        )
    )
    changebots = results[1:]
    worst_p99 = max(ratio(r.p(99), base_p99) for r in changebots)
    worst_rps = min(ratio(r.throughput, base_rps) for r in changebots)
    worst_scale = max(scales) if scales else 1.0
    worst_webhook = max(w.p(99) for w in webhooks) if webhooks else 0.0
    failures = sum(r.failures for r in results) + sum(w.failures for w in webhooks)
    met = (
        worst_p99 <= P99_TARGET
        and worst_rps >= THROUGHPUT_TARGET
        and worst_scale <= SCALE_TARGET
        and worst_webhook < WEBHOOK_TARGET_MS
        and failures == 0
    )
    verdict = (
        "smoke run, targets not checked" if smoke else ("targets met" if met else "TARGETS MISSED")
    )
    summary = (
        f"gate: {options.requests} asks per round at {options.concurrency} pipelines, median of "
        f"{options.rounds} round{'s' if options.rounds > 1 else ''}; worst p99 {worst_p99:.2f}x "
        f"baseline (target <= {P99_TARGET}), worst throughput {worst_rps:.2f}x (target >= "
        f"{THROUGHPUT_TARGET}), worst change from {_short(min(options.sizes))} to "
        f"{_short(max(options.sizes))} {worst_scale:.2f}x (target <= {SCALE_TARGET}); webhook "
        f"p99 {worst_webhook:.1f} ms with GitHub +{options.github_delay:g}s (target < "
        f"{WEBHOOK_TARGET_MS:.0f} ms); not answered {failures}: {verdict}"
    )
    return summary, met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run; no targets")
    parser.add_argument("--sizes", help="numbers of changes, e.g. 10000,1000000")
    parser.add_argument("--requests", type=int, default=4000, help="asks per round")
    parser.add_argument("--concurrency", type=int, default=50, help="pipelines asking at once")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deliveries", type=int, default=1000, help="GitHub webhooks sent")
    parser.add_argument("--github-delay", type=float, default=5.0)
    parser.add_argument("--postgres-url", default=postgres_url_option())
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    sizes = (
        tuple(sorted({int(s.replace("_", "")) for s in args.sizes.split(",")}))
        if args.sizes
        else SIZES
    )
    if args.smoke:
        sizes = (1_000, 2_000)
        args.requests, args.concurrency, args.rounds, args.deliveries = 100, 10, 1, 20
        args.github_delay = 1.0
    postgres = None if args.no_postgres else args.postgres_url
    print(f"machine: {machine()}")
    print(f"cores: {pinning()}")
    if postgres and not postgres_reachable(postgres):
        print(f"PostgreSQL at {postgres} is not reachable: SQLite only")
        postgres = None
    elif postgres:
        print(f"database: {postgres_version(postgres)}, and SQLite")
    options = Options(
        sizes,
        args.requests,
        args.concurrency,
        args.rounds,
        args.deliveries,
        args.github_delay,
        postgres,
    )
    memory.tune_collector()
    results, webhooks = asyncio.run(measure(options))
    summary, met = report(results, webhooks, options, args.smoke)
    print(summary)
    return 0 if met or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
