"""The deploy gate at an earlier commit (A) against the working tree (B), round by round.

    python -m bench.ab [REV] [--engine postgresql|sqlite] [--a-engine sqlite|postgresql]
                       [--rounds 6] [--requests 6000] [--size N]

`bench.gate`'s load (50 pipelines; 98 in 100 questions asked before, 2 in 100 first answers,
whose news is shown in Slack) is sent to changebot at REV and to changebot as it is in this
tree, each on its own database of the same changes, in turn: the same questions to both in
every round, the order alternating from round to round, each app alone on the core
`bench.serving.pin_apart` gives it. Each app's CPU per answer (all its threads, until what the
round's news caused is shown) is read from the kernel, and B over A is taken round by round.

This machine's pace moves by a third from one minute to the next: two figures measured
minutes apart (`bench.gate` at two commits, or SQLite then PostgreSQL) differ by as much as
most changes do. Rounds a few seconds apart meet the same moment; their ratio is what tells
whether a change made the gate cheaper. The tree at REV is taken with `git archive` and
imported ahead of this one (`PYTHONPATH`); its schema must be this tree's.

Without REV, A is this tree too, on another engine (`--a-engine sqlite`): what PostgreSQL
costs over SQLite, measured at the same moments.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench import gate
from bench.databases import postgres_reachable, postgres_url_option, sqlite_url, throwaway_postgres
from bench.report import machine, table
from bench.serving import all_shown, cpu_seconds, pin_apart, send_load, workdir
from storage import migrate
from storage.db import make_engine
from tests.e2e.harness import BotProcess

ROOT = Path(__file__).resolve().parents[1]
SIZE = 10_000
CONCURRENCY = 50
ENGINES = ("postgresql", "sqlite")


@dataclass
class Side:
    """One of the two apps: its name, its bot, its token, and what each round measured."""

    name: str
    bot: BotProcess
    token: str
    cpu: list[float] = field(default_factory=list)
    pace: list[float] = field(default_factory=list)


def tree_at(rev: str, into: Path) -> Path:
    """The repository's files at `rev`, written under `into`."""
    tree = into / "tree-a"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


@contextmanager
def database(engine: str, postgres: str, work: Path, name: str) -> Iterator[str]:
    if engine == "sqlite":
        yield sqlite_url(work, f"ab-{name}.db")
    else:
        with throwaway_postgres(postgres, prefix="cb_ab") as url:
            yield url


@dataclass(frozen=True)
class Setup:
    """What A and B each run: a tree (None: this one) on an engine."""

    tree: Path | None
    engine: str


@asynccontextmanager
async def sides(
    setups: tuple[Setup, Setup], postgres: str, work: Path, changes: gate.Table
) -> AsyncIterator[tuple[Side, Side]]:
    """A and B, started and warmed up, each on a database of the same changes, with a Slack
    of its own holding their cards."""
    async with AsyncExitStack() as stack:
        made: list[Side] = []
        for name, setup in zip("AB", setups, strict=True):
            env = {"PYTHONPATH": str(setup.tree)} if setup.tree is not None else {}
            url = stack.enter_context(database(setup.engine, postgres, work, name))
            schema = make_engine(url)
            migrate.upgrade(schema)
            gate.seed(schema, changes)
            token = gate.a_token(schema, changes.now)
            schema.dispose()
            bot, slack = await stack.enter_async_context(gate._served(url, work, env))
            gate.cards_in_slack(slack, [*gate.pool_of(changes), *gate.fresh_of(changes)])
            made.append(Side(name, bot, token))
        pool = gate.pool_of(changes)
        warmup = [gate._question(n, i % CONCURRENCY) for i, n in enumerate(pool)]
        for side in made:
            await side.bot.start()
            await all_shown(side.bot, timeout=600)
            assert side.bot.process is not None
            pin_apart(side.bot.process.pid)
            await send_load(_gate_url(side), warmup, CONCURRENCY, work, bearer=side.token)
            await all_shown(side.bot, timeout=600)
        yield made[0], made[1]


def _gate_url(side: Side) -> str:
    return side.bot.url + "/api/v1/gate"


async def measure(
    rev: str | None, engines: tuple[str, str], postgres: str, rounds: int, requests: int, size: int
) -> list[Side]:
    changes = gate.Table(size, datetime.now().astimezone())
    rng = random.Random(size)
    fresh = gate.fresh_of(changes)
    rng.shuffle(fresh)
    loads = [gate.questions(changes, requests, rng, fresh) for _ in range(rounds)]
    with workdir() as work:
        setups = (
            Setup(tree_at(rev, work) if rev else None, engines[0]),
            Setup(None, engines[1]),
        )
        async with sides(setups, postgres, work, changes) as (a, b):
            for number, load in enumerate(loads):
                for side in (a, b) if number % 2 == 0 else (b, a):
                    assert side.bot.process is not None
                    began = cpu_seconds(side.bot.process.pid)
                    run = await send_load(
                        _gate_url(side), load, CONCURRENCY, work, bearer=side.token
                    )
                    await all_shown(side.bot, timeout=600)
                    spent = cpu_seconds(side.bot.process.pid) - began
                    side.cpu.append(spent / len(load) * 1e6)
                    side.pace.append(run.throughput)
                print(
                    f"round {number + 1}: A {a.cpu[-1]:.0f} us/answer, B {b.cpu[-1]:.0f}, "
                    f"B/A {b.cpu[-1] / a.cpu[-1]:.3f}",
                    flush=True,
                )
            return [a, b]


def report(a: Side, b: Side, rev: str | None, engines: tuple[str, str]) -> str:
    ratios = [nb / na for na, nb in zip(a.cpu, b.cpu, strict=True)]
    rows = [
        [
            side.name,
            f"{statistics.median(side.cpu):.0f}",
            f"{min(side.cpu):.0f}-{max(side.cpu):.0f}",
            f"{statistics.median(side.pace):.0f}",
        ]
        for side in (a, b)
    ]
    lines = [
        table(["app", "CPU us/answer", "range", "req/s"], rows),
        f"B (this tree, {engines[1]}) over A ({rev or 'this tree'}, {engines[0]}), "
        "CPU per answer: median "
        f"{statistics.median(ratios):.3f} (rounds {min(ratios):.3f} to {max(ratios):.3f}, "
        f"{len(ratios)} rounds)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("rev", nargs="?", help="the commit to compare this tree with (A)")
    parser.add_argument("--engine", choices=ENGINES, default="postgresql", help="B's (and A's)")
    parser.add_argument("--a-engine", choices=ENGINES, help="A's, if not B's")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=6000, help="asks per round")
    parser.add_argument("--size", type=int, default=SIZE, help="changes in each database")
    parser.add_argument("--postgres-url", default=postgres_url_option())
    args = parser.parse_args(argv)
    engines = (args.a_engine or args.engine, args.engine)
    if not args.rev and engines[0] == engines[1]:
        parser.error("name a commit, or another engine for A (--a-engine)")
    if "postgresql" in engines and not postgres_reachable(args.postgres_url):
        print(f"PostgreSQL at {args.postgres_url} is not reachable", file=sys.stderr)
        return 2
    print(f"machine: {machine()}")
    a, b = asyncio.run(
        measure(args.rev, engines, args.postgres_url, args.rounds, args.requests, args.size)
    )
    print(report(a, b, args.rev, engines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
