"""Acknowledgement latency and throughput: changebot against a bare Bolt app.

    python -m bench.ack [--smoke] [--requests 2000] [--concurrency 50] [--delay 2] [--rounds 3]

Each app is served in a process of its own and driven by the same signed load from another
process (`bench.load`): `--requests` `/change` commands (each opens the new-change form, so
changebot calls views.open after acknowledging) and as many Approve clicks (each approves a
different change: a database transaction, its audit event, and a card update to publish),
shuffled together, over `--concurrency` connections, against the local Slack stand-in.

The baseline is a bare Bolt `AsyncApp` whose listeners only acknowledge (`bench.bare_bolt`).
changebot runs on SQLite and on PostgreSQL; then again with the stand-in delaying every Web API
call by `--delay` seconds, to show that no Web API call stands before an acknowledgement.
Every app first gets a short warm-up (the same kinds of request, not counted), as a server in
production has long had when a burst comes. Each app runs on a core of its own, the load and
the stand-in on the others (`bench.serving.pin_apart`): Slack's servers and the people
clicking are not on the bot's machine, and the stand-in's work for changebot's Web API calls
would otherwise take CPU from changebot that a bare app, calling none, is spared. For the same
reason the load runs ahead of the stand-in on their shared core where it has the right to
(`bench.load.run_ahead`): else the load's timings of changebot's acknowledgements include its
waits for the stand-in's work on changebot's forms.

This machine is shared and noisy: one burst's p99 can move by a third from one run to the
next, for either app. So the bursts come in `--rounds` rounds, each sending the same requests
to the baseline and then to changebot (undelayed, then delayed), the baseline served all along;
every figure is the median of the rounds' figures, and each round's p99 is printed too.

Targets: p99 <= 1.5x the baseline's; throughput >= 0.6x the baseline's; with the delay,
p99 <= 1.2x changebot's own undelayed p99.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from bench.databases import (
    postgres_reachable,
    postgres_url_option,
    sqlite_url,
    throwaway_postgres,
)
from bench.load import Request
from bench.report import machine, postgres_version, ratio, table
from bench.serving import (
    Rounds,
    Run,
    Served,
    all_shown,
    approvals_made,
    bare_bolt,
    build_load,
    changebot,
    pin_apart,
    pinning,
    seed_awaiting_approval,
    send_load,
    workdir,
)
from bot import memory
from standin import SlackStandIn
from tests.e2e.harness import BotProcess, workspace

P99_TARGET = 1.5
THROUGHPUT_TARGET = 0.6
DELAY_TARGET = 1.2


@dataclass(frozen=True)
class Options:
    requests: int
    warmup: int
    concurrency: int
    delay: float
    postgres_url: str | None
    #: After the delayed run: how long no form may come before it is over (past the 10 s
    #: timeout of the bot's client, which a form waiting for a connection can reach).
    quiet: float = 12.0
    #: Bursts per app and engine, alternating (baseline, changebot, changebot delayed): each
    #: figure is the median of the rounds'.
    rounds: int = 3


@dataclass
class Result(Rounds):
    #: Per round: seconds from the first request until all it caused was in Slack (cards,
    #: replies, forms).
    done: list[float] = field(default_factory=list)


async def measure(options: Options) -> list[Result]:
    """The baseline is served throughout; each round sends it the same requests as changebot,
    just before changebot's burst, so the two meet the same moment of a noisy machine."""
    engines: list[tuple[str, str | None]] = [("SQLite", None)]
    if options.postgres_url:
        engines.append(("PostgreSQL", options.postgres_url))
    baseline = Result("bare Bolt (baseline)")
    results = [baseline]
    with workdir() as work:
        async with (
            SlackStandIn(workspace(), trigger_ttl=24 * 3600) as bare_slack,
            bare_bolt(bare_slack, work) as bare,
        ):
            pin_apart(bare.pid)
            for engine, server in engines:
                with _database(engine, server, work) as url:
                    results += await _rounds(engine, url, options, work, bare, baseline)
    return results


async def _rounds(
    engine: str, url: str, options: Options, work: Path, bare: Served, baseline: Result
) -> list[Result]:
    n, warm, rounds = options.requests, options.warmup, options.rounds
    seed_awaiting_approval(url, warm + 2 * n * rounds)
    # The bot posts every seeded change's card when it starts, as after a restart: thousands
    # of cards, minutes on PostgreSQL, before the first burst.
    undelayed = Result(f"changebot ({engine})")
    delayed = Result(f"changebot ({engine}), Web API +{options.delay:g}s")
    async with (
        SlackStandIn(workspace(), trigger_ttl=24 * 3600) as slack,
        changebot(slack, work, url, settle=1800) as (served, bot),
    ):
        pin_apart(served.pid)
        warmup = await build_load(slack, warm, warm, seed=1)
        loads = [
            await build_load(slack, n, n, seed=2 + i, skip_cards=warm + i * n)
            for i in range(2 * rounds)
        ]
        await send_load(served.url, warmup, options.concurrency, work)
        if not baseline.runs:
            await send_load(bare.url, warmup, options.concurrency, work)
        await _settled(bot, slack, forms=warm, approvals=warm)
        for i in range(rounds):
            load, later = loads[2 * i], loads[2 * i + 1]
            baseline.runs.append(await _measured(baseline.name, bare, load, options, work))
            forms = len(slack.calls_to("views.open")) + n
            approved = approvals_made(bot) + n
            started = time.monotonic()
            undelayed.runs.append(await _measured(undelayed.name, served, load, options, work))
            await _settled(bot, slack, forms=forms, approvals=approved)
            undelayed.done.append(time.monotonic() - started)

            slack.delay_all(options.delay)
            delayed.runs.append(await _measured(delayed.name, served, later, options, work))
            slack.heal()  # thousands of delayed calls: what counts here is only the ack
            # Forms wait for one of the client's 100 connections, each held for the delay,
            # and those that wait past the client's 10 s timeout never open (nor would they
            # in Slack: a trigger lasts 3 s); so wait until none is still coming.
            await all_shown(bot, timeout=900, also=_steady(slack, "views.open", options.quiet))
    return [undelayed, delayed]


async def _measured(
    name: str, served: Served, load: list[Request], options: Options, work: Path
) -> Run:
    run = await send_load(served.url, load, options.concurrency, work)
    if run.failures:
        print(f"warning: {name}: {run.failures} requests were not answered 200", file=sys.stderr)
    return run


async def _settled(bot: BotProcess, slack: SlackStandIn, *, forms: int, approvals: int) -> None:
    """Wait until the requests' after-ack work is done: `forms` forms opened and `approvals`
    approvals recorded in all, and every card and reply shown (so runs do not overlap, and
    `done` tells how long it took). The outbox alone can look empty while moves are still
    being made."""

    def made() -> bool:
        return len(slack.calls_to("views.open")) >= forms and approvals_made(bot) >= approvals

    await all_shown(bot, timeout=900, also=made)


def _steady(slack: SlackStandIn, method: str, seconds: float) -> Callable[[], bool]:
    """True once no call to `method` has come for `seconds`."""
    last = (-1, time.monotonic())

    def steady() -> bool:
        nonlocal last
        count = len(slack.calls_to(method))
        if count != last[0]:
            last = (count, time.monotonic())
        return time.monotonic() - last[1] >= seconds

    return steady


@contextmanager
def _database(engine: str, server: str | None, work: Path) -> Iterator[str]:
    if server is None:
        yield sqlite_url(work, f"ack-{engine.lower()}.db")
    else:
        with throwaway_postgres(server) as url:
            yield url


def report(results: list[Result], options: Options, smoke: bool) -> tuple[str, bool]:
    base = results[0]
    base_p99, base_rps = base.p(99), base.throughput
    undelayed: dict[str, float] = {}
    rows = []
    verdicts = []
    for r in results:
        p99, rps = r.p(99), r.throughput
        delayed = "Web API +" in r.name
        if r is base:
            against = "-"
        elif delayed:
            own = undelayed[r.name.split(", Web API")[0]]
            against = f"{ratio(p99, own):.2f}x own p99"
            verdicts.append(ratio(p99, own) <= DELAY_TARGET)
        else:
            undelayed[r.name] = p99
            against = "-"
            verdicts.append(ratio(p99, base_p99) <= P99_TARGET)
            verdicts.append(ratio(rps, base_rps) >= THROUGHPUT_TARGET)
        rows.append(
            [
                r.name,
                r.p(50),
                r.p(95),
                r.p(99),
                r.p(99, "/change"),
                r.p(99, "approve"),
                rps,
                ratio(p99, base_p99),
                ratio(rps, base_rps),
                against,
                r.each_p99(),
                f"{median(r.done):.1f}" if r.done else "-",
                r.failures,
            ]
        )
    headers = [
        "app",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99 /change",
        "p99 approve",
        "req/s",
        "p99 ratio",
        "req/s ratio",
        "delayed vs undelayed",
        "p99 of each round",
        "all done s",
        "not 200",
    ]
    print(table(headers, rows))
    if not all(run.ahead for r in results for run in r.runs):
        print(
            "note: the load could not run ahead of the Slack stand-in (no right to raise its "
            "priority): changebot's timings include waits for the stand-in's work on its forms"
        )
    failures = sum(r.failures for r in results)
    met = all(verdicts) and failures == 0
    undelayed_runs = [r for r in results[1:] if "Web API +" not in r.name]
    worst_p99 = max(ratio(r.p(99), base_p99) for r in undelayed_runs)
    worst_rps = min(ratio(r.throughput, base_rps) for r in undelayed_runs)
    worst_delayed = max(
        ratio(r.p(99), undelayed[r.name.split(", Web API")[0]])
        for r in results
        if "Web API +" in r.name
    )
    verdict = (
        "smoke run, targets not checked" if smoke else ("targets met" if met else "TARGETS MISSED")
    )
    summary = (
        f"ack: {2 * options.requests} requests per app at {options.concurrency} connections, "
        f"median of {options.rounds} round{'s' if options.rounds > 1 else ''}; "
        f"worst p99 {worst_p99:.2f}x baseline (target <= {P99_TARGET}), "
        f"worst throughput {worst_rps:.2f}x (target >= {THROUGHPUT_TARGET}), "
        f"Web API +{options.delay:g}s p99 {worst_delayed:.2f}x own (target <= {DELAY_TARGET}): "
        f"{verdict}"
    )
    return summary, met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run; no targets")
    parser.add_argument("--requests", type=int, default=2000, help="commands, and as many clicks")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay", type=float, default=2.0, help="Web API delay, seconds")
    parser.add_argument("--postgres-url", default=postgres_url_option())
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per app; medians reported")
    args = parser.parse_args(argv)
    if args.smoke:
        args.requests, args.warmup, args.concurrency, args.delay = 20, 5, 5, 0.2
        args.rounds = 1
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    postgres = None if args.no_postgres else args.postgres_url
    print(f"machine: {machine()}")
    print(f"cores: {pinning()}")
    if postgres and not postgres_reachable(postgres):
        print(f"PostgreSQL at {postgres} is not reachable: SQLite only")
        postgres = None
    elif postgres:
        print(f"database: {postgres_version(postgres)}, and SQLite")
    quiet = 1.0 if args.smoke else 12.0
    options = Options(
        args.requests, args.warmup, args.concurrency, args.delay, postgres, quiet, args.rounds
    )
    # This process is the Slack stand-in, which keeps every form and message it was sent:
    # at CPython's default thresholds its collector walks them all every second or so.
    memory.tune_collector()
    results = asyncio.run(measure(options))
    summary, met = report(results, options, args.smoke)
    print(summary)
    return 0 if met or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
