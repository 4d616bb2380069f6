"""The deploy gate's cost in instructions, counted by callgrind: changebot against the baseline.

    python -m bench.instructions [--requests 600] [--postgres-url URL]

The same server as `bench.gate` measures (changebot's HTTP app, on a database of 10,000
changes), and the same baseline (`bench.bare_gate`), each run under valgrind's callgrind
with the load sent from a process of its own. Around a load of `--requests` questions and
around one of a third as many, the server's instruction counter is zeroed and read; the
difference over the difference in questions is what one answer costs the server, whatever
else it did once. An instruction count does not move with the machine's speed or its
neighbours' load, so a change of a tenth or more shows run after run, where timed figures on
these machines move by 10 to 30% (`bench.gate` says what that costs in time). Beside
it, the larger load's whole count over its questions, fixed costs included.

Mind how the answers are batched: under valgrind the server is the slow side, so the gate's
rounds fill towards the pipelines asking at once, larger than in `bench.gate`, and how many
each round holds still follows timing. Run after run on the same code the baseline's count
moved by 2%, changebot's by 4% over the whole larger load and by up to 11% by the difference:
this tells changes of 10% and more; a saving made once a round shows less here than in the
desk's own count.

What it counts, and what not: the questions are the ones pipelines repeat (no first answers,
so nothing for Slack); changebot runs without its background work (the publisher, the
timers), which under valgrind's fifty-fold slowdown would run all the time and be counted
with the answers. On PostgreSQL only changebot's own instructions count, not the server's.
Needs valgrind (Debian: `apt-get install valgrind`); about two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import random
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiohttp import web

from bench.databases import postgres_reachable, postgres_url_option, sqlite_url, throwaway_postgres
from bench.gate import Table, _question, a_token, pool_of, seed
from bench.report import machine, table
from bench.serving import send_load, wait_until_up, workdir
from bot import memory
from storage import migrate
from storage.db import make_engine
from tests.e2e.harness import free_port

SIZE = 10_000
CONCURRENCY = 50


@dataclass(frozen=True)
class Count:
    app: str
    per_answer: float
    counts: tuple[int, int]


# -- the served app, in the process valgrind runs ------------------------------------------------


async def serve(kind: str, port: int, database: str, token: str) -> None:
    if kind == "baseline":
        from bench.bare_gate import web_app as bare_app

        runner = web.AppRunner(bare_app(token), access_log=None)
    else:
        from bot.app import create_app
        from bot.protocol import Runner
        from bot.server import web_app
        from bot.settings import Settings
        from workflows.policy import load_policy

        settings = Settings(
            bot_token="xoxb-bench", signing_secret="0" * 32, slack_api_url="http://127.0.0.1:9/"
        )
        bot = create_app(settings, make_engine(database), load_policy(None))
        runner = Runner(web_app(bot, background=False), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# -- counting ------------------------------------------------------------------------------------


def _instructions(out: Path) -> int:
    """The instructions in callgrind's last dump for this process."""
    dumps = sorted(glob.glob(f"{out}.*"), key=os.path.getmtime)
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for {out}")
    for line in Path(dumps[-1]).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {dumps[-1]}")


async def count(kind: str, database: str, token: str, requests: int, work: Path) -> Count:
    asked = [_question(n, i % CONCURRENCY) for i, n in enumerate(pool_of(Table(SIZE, _now())))]
    # The pool lists the authorised changes first: shuffled (the same way every run), each
    # load holds the three kinds of answer in the pool's proportions, whatever its size.
    mixed = random.Random(1).sample(asked, len(asked))
    loads = [[mixed[i % len(mixed)] for i in range(k)] for k in (requests // 3, requests)]
    port, out = free_port(), work / f"callgrind-{kind}"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.instructions",
        "--serve",
        kind,
        "--port",
        str(port),
        "--database",
        database,
        "--token",
        token,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/gate"
        # Under valgrind the app takes a minute or more to import and come up.
        await wait_until_up(f"http://127.0.0.1:{port}/healthz", process, timeout=600)
        for _ in range(2):  # every change asked about once, and read from the cache after
            await send_load(url, asked, CONCURRENCY, work, bearer=token)
        counts = []
        for load in loads:
            _control("-z", process.pid)
            run = await send_load(url, load, CONCURRENCY, work, bearer=token)
            if run.failures:
                raise RuntimeError(f"{kind}: {run.failures} questions were not answered 200")
            for stale in glob.glob(f"{out}.*"):
                os.remove(stale)
            _control("-d", process.pid)
            counts.append(_instructions(out))
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    per_answer = (counts[1] - counts[0]) / (len(loads[1]) - len(loads[0]))
    return Count(kind, per_answer, (counts[0], counts[1]))


def _control(option: str, pid: int) -> None:
    """callgrind_control: -z zeroes the counters, -d dumps them (and returns once written)."""
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def _now() -> datetime:
    return datetime.now().astimezone()


async def measure(requests: int, postgres: str | None) -> tuple[str, list[Count]]:
    with workdir() as work, ExitStack() as stack:
        if postgres is None:
            engine_name, database = "SQLite", sqlite_url(work, "instructions.db")
        else:
            engine_name, database = "PostgreSQL", stack.enter_context(throwaway_postgres(postgres))
        engine = make_engine(database)
        migrate.upgrade(engine)
        seed(engine, Table(SIZE, _now()))
        token = a_token(engine, _now())
        engine.dispose()
        counts = [
            await count("baseline", database, token, requests, work),
            await count("changebot", database, token, requests, work),
        ]
    return engine_name, counts


def report(engine: str, counts: list[Count], requests: int) -> str:
    base = counts[0].per_answer
    rows = [
        (
            "bare endpoint (baseline)" if c.app == "baseline" else f"changebot ({engine}, 10k)",
            round(c.per_answer),
            c.per_answer / base,
            round(c.counts[1] / requests),
            c.counts[0],
            c.counts[1],
        )
        for c in counts
    ]
    headers = (
        "app",
        "instructions/answer",
        "ratio",
        f"all at {requests} / {requests}",
        f"at {requests // 3}",
        f"at {requests}",
    )
    ratio = counts[1].per_answer / base
    summary = (
        f"instructions: {requests} repeated gate questions at {CONCURRENCY} pipelines; "
        f"changebot {ratio:.2f}x the baseline's instructions an answer"
    )
    return table(headers, rows) + "\n" + summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=600, help="questions in the larger load")
    parser.add_argument(
        "--postgres-url",
        default=None,
        help=f"count on PostgreSQL (a throw-away database there) instead of SQLite; "
        f"e.g. {postgres_url_option() or 'postgresql://postgres@127.0.0.1:5432/test'}",
    )
    parser.add_argument("--serve", choices=("baseline", "changebot"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        memory.limit_arenas()
        memory.tune_collector()
        asyncio.run(serve(args.serve, args.port, args.database, args.token))
        return 0
    if args.requests < 30:
        parser.error("--requests must be at least 30")
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (Debian: apt-get install valgrind)")
    if args.postgres_url and not postgres_reachable(args.postgres_url):
        parser.error(f"PostgreSQL at {args.postgres_url} is not reachable")
    print(f"machine: {machine()}")
    engine, counts = asyncio.run(measure(args.requests, args.postgres_url))
    print(report(engine, counts, args.requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
