"""Resident memory of `changebot serve` after 10k and after 20k requests, against a bare Bolt app.

    python -m bench.memory [--smoke] [--requests 10000] [--cards 2000] [--concurrency 50]

changebot runs on a SQLite database (in a temporary directory) holding `--cards` Normal changes
waiting for one approval, against the local Slack stand-in, and is driven from another process
(`bench.load`) by signed requests at `--concurrency` connections, in batches of `--batch`; after
each batch the bench waits until the bot has shown everything its database owes (its after-ack
work is done) before it goes on or measures. Every block of `--requests` requests is a
realistic mix:

    50%  /change                 opens the new-change form (views.open)
    20%  Approve click           each of the `--cards` cards once; in the second block the same
                                 cards again, which the bot refuses (already approved)
    10%  /change list            mine, open or awaiting-me (database reads, a long message)
     8%  /change show CHG-n      one change, read and rendered
     7%  /change help
     5%  app_home_opened         the Home tab, built from three queries and views.publish

Resident memory (VmRSS, summed over the bot's process and any children) is read after start and
a warm-up of the same mix (`--warmup` requests, with Approve clicks on cards of their own) -- the
baseline every later figure is compared to --, after the first block, and after the second;
the peak is VmHWM. A bare Bolt app that only acknowledges (`bench.bare_bolt`) gets the same
warm-up and the same requests, as a reference row: what any Bolt app on this Python holds.

Targets: at most 150 MB (150e6 bytes, 143.1 MiB) after the second block; and no growth
between the first and the second block, taken as at most GROWTH_TOLERANCE_MIB (5 MiB, about 3%
of the figures here). A process that holds something per request grows by 2-3 MiB every 10k
requests for each 250 bytes it keeps, so this tolerance catches any per-request leak of a
few hundred bytes upward, while leaving room for what is noise and not growth: CPython frees
small objects into 256 KiB arenas and 1 MiB pools it only returns to the system once wholly
empty, and glibc malloc keeps freed heap for reuse, so the same steady state reads a few MiB
apart from one moment to the next depending on which arenas the last burst left partly used.
Each reading is taken once the app has been idle for IDLE_SECONDS (both apps alike): a server
is measured as it stands between bursts, after its idle housekeeping (changebot's sweep, every
5 s, hands freed heap back to the system when no request came for a second; see bot/memory.py).

`--smoke` runs 300 + 300 requests in seconds and checks no target.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.databases import sqlite_url
from bench.load import Request
from bench.report import machine, ratio, table
from bench.serving import (
    Recorder,
    all_shown,
    bare_bolt,
    build_load,
    changebot,
    seed_awaiting_approval,
    send_load,
    workdir,
)
from bot import memory
from standin import SlackDriver, SlackStandIn
from tests.e2e.harness import SIGNING_SECRET, BotProcess, workspace

TARGET_MB = 150.0
TARGET_MIB = TARGET_MB * 1e6 / 2**20
GROWTH_TOLERANCE_MIB = 5.0
#: Longer than changebot's sweep interval (CHANGEBOT_SWEEP_SECONDS, 5 s by default).
IDLE_SECONDS = 6.5

REQUESTERS = ["U0ALICE", "U0BOB", "U0ERIN"]
EVERYONE = ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0ERIN"]
# Shares of a block besides Approve clicks (one per card) and /change (the rest).
SHARES = {"list": 0.10, "show": 0.08, "help": 0.07, "home": 0.05}


@dataclass(frozen=True)
class Options:
    requests: int
    cards: int
    warmup: int
    warmup_cards: int
    concurrency: int
    batch: int
    smoke: bool


@dataclass
class Readings:
    """MiB at each point, and how many requests were not answered 200."""

    name: str
    points: dict[str, float] = field(default_factory=dict)
    peak: float = 0.0
    failures: int = 0
    processes: int = 1


# -- the load --------------------------------------------------------------------------------


async def build_block(
    slack: SlackStandIn, size: int, clicks: int, *, seed: int, skip_cards: int, cards: int
) -> list[Request]:
    """`size` requests: `clicks` Approve clicks (from the `skip_cards`-th card on), the shares
    of list, show, help and Home, and /change commands for the rest; shuffled."""
    counts = {kind: int(size * share) for kind, share in SHARES.items()}
    commands = size - clicks - sum(counts.values())
    if commands < 0:
        raise ValueError(f"{clicks} clicks do not fit in a block of {size}")
    requests = await build_load(slack, commands, clicks, seed=seed, skip_cards=skip_cards)
    requests += await _other_kinds(slack, counts, random.Random(seed), cards)
    random.Random(seed).shuffle(requests)
    return requests


async def _other_kinds(
    slack: SlackStandIn, counts: dict[str, int], rng: random.Random, cards: int
) -> list[Request]:
    recorder = Recorder()
    driver = SlackDriver("http://unused", SIGNING_SECRET, slack)
    driver.transport = recorder
    kinds: list[str] = []
    for _ in range(counts["list"]):
        which = rng.choice(["", "mine", "open", "awaiting-me"])
        await driver.slash_command(rng.choice(EVERYONE), "/change", f"list {which}".strip())
        kinds.append("/change list")
    for _ in range(counts["show"]):
        number = rng.randint(1, cards)
        await driver.slash_command(rng.choice(EVERYONE), "/change", f"show CHG-{number:04d}")
        kinds.append("/change show")
    for _ in range(counts["help"]):
        await driver.slash_command(rng.choice(EVERYONE), "/change", "help")
        kinds.append("/change help")
    for _ in range(counts["home"]):
        await driver.open_home(rng.choice(EVERYONE))
        kinds.append("home")
    return [
        Request(kind, d.content_type, d.body)
        for kind, d in zip(kinds, recorder.deliveries, strict=True)
    ]


async def send_in_batches(
    url: str, requests: list[Request], options: Options, work: Path, bot: BotProcess | None
) -> int:
    """Send `requests` `options.batch` at a time, letting the bot settle after each; return
    how many were not answered 200."""
    failures = 0
    for start in range(0, len(requests), options.batch):
        run = await send_load(
            url, requests[start : start + options.batch], options.concurrency, work
        )
        failures += run.failures
        if bot is not None:
            await all_shown(bot)
            await asyncio.sleep(0.5)  # what remains after the last card: its ack, its log line
    return failures


# -- memory ----------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux: /proc/<pid>/task/<tid>/children)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def _status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for {pid}")


def resident(pid: int) -> tuple[float, int]:
    """VmRSS summed over the process tree, MiB; and how many processes that is."""
    pids = process_tree(pid)
    return sum(_status_mib(p, "VmRSS") for p in pids), len(pids)


def peak(pid: int) -> float:
    """VmHWM (the high-water mark of VmRSS) summed over the tree: for one process, its peak."""
    return sum(_status_mib(p, "VmHWM") for p in process_tree(pid))


# -- the runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loads:
    warmup: list[Request]
    first: list[Request]
    second: list[Request]


async def measure(options: Options) -> tuple[Readings, Readings]:
    with workdir() as work:
        url = sqlite_url(work, "memory.db")
        seed_awaiting_approval(url, options.warmup_cards + options.cards)
        async with (
            SlackStandIn(workspace(), trigger_ttl=24 * 3600) as slack,
            changebot(slack, work, url) as (served, bot),
        ):
            total = options.warmup_cards + options.cards
            loads = Loads(
                await build_block(
                    slack, options.warmup, options.warmup_cards, seed=1, skip_cards=0, cards=total
                ),
                # The same cards in both blocks: approved in the first, refused in the second.
                await build_block(
                    slack,
                    options.requests,
                    options.cards,
                    seed=2,
                    skip_cards=options.warmup_cards,
                    cards=total,
                ),
                await build_block(
                    slack,
                    options.requests,
                    options.cards,
                    seed=3,
                    skip_cards=options.warmup_cards,
                    cards=total,
                ),
            )
            bot_readings = await _run(
                "changebot serve (SQLite)", served.url, served.pid, loads, options, work, bot
            )
        async with (
            SlackStandIn(workspace(), trigger_ttl=24 * 3600) as slack,
            bare_bolt(slack, work) as served,
        ):
            bare = await _run("bare Bolt (reference)", served.url, served.pid, loads, options, work)
    return bot_readings, bare


async def _run(
    name: str,
    url: str,
    pid: int,
    loads: Loads,
    options: Options,
    work: Path,
    bot: BotProcess | None = None,
) -> Readings:
    readings = Readings(name)
    idle = 0.5 if options.smoke else IDLE_SECONDS
    readings.failures += await send_in_batches(url, loads.warmup, options, work, bot)
    await asyncio.sleep(idle)
    readings.points["start"], readings.processes = resident(pid)
    for point, block in (("first", loads.first), ("second", loads.second)):
        readings.failures += await send_in_batches(url, block, options, work, bot)
        await asyncio.sleep(idle)
        readings.points[point], _ = resident(pid)
    readings.peak = peak(pid)
    return readings


# -- the report ------------------------------------------------------------------------------


def report(bot: Readings, bare: Readings, options: Options) -> tuple[str, bool]:
    n = options.requests
    points = [
        ("start", f"after start + {options.warmup} warm-up"),
        ("first", f"after {n:,}"),
        ("second", f"after {2 * n:,}"),
    ]
    rows: list[list[object]] = []
    for readings, reference in ((bot, bare), (bare, None)):
        start = readings.points["start"]
        marks = [(label, readings.points[key], key) for key, label in points]
        for label, value, key in [*marks, ("peak (VmHWM)", readings.peak, None)]:
            against: object = "-"
            if reference is not None and key is not None:
                against = ratio(value, reference.points[key])
            rows.append([readings.name, label, value, value - start, ratio(value, start), against])
    headers = ["app", "when", "RSS MiB", "+MiB", "vs own start", "vs bare Bolt"]
    print(table(headers, rows))
    print(
        f"changebot serve: {bot.processes} process(es); requests not answered 200: "
        f"changebot {bot.failures}, bare Bolt {bare.failures}"
    )
    after, growth = bot.points["second"], bot.points["second"] - bot.points["first"]
    met = after <= TARGET_MIB and growth <= GROWTH_TOLERANCE_MIB and bot.failures == 0
    verdict = (
        "smoke run, targets not checked"
        if options.smoke
        else ("targets met" if met else "TARGETS MISSED")
    )
    summary = (
        f"memory: changebot serve {after:.1f} MiB after {2 * n:,} requests "
        f"({ratio(after, bare.points['second']):.2f}x bare Bolt, target <= {TARGET_MB:.0f} MB "
        f"= {TARGET_MIB:.1f} MiB), {growth:+.1f} MiB from {n:,} to {2 * n:,} "
        f"(target <= +{GROWTH_TOLERANCE_MIB:.0f} MiB), peak {bot.peak:.1f} MiB: {verdict}"
    )
    return summary, met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run; no targets")
    parser.add_argument("--requests", type=int, default=10_000, help="requests in each block")
    parser.add_argument("--cards", type=int, default=2_000, help="Approve clicks in each block")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--warmup-cards", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--batch", type=int, default=2_500, help="requests between settlings")
    args = parser.parse_args(argv)
    if args.smoke:
        args.requests, args.cards, args.warmup, args.warmup_cards = 300, 60, 100, 20
        args.concurrency, args.batch = 20, 300
    print(f"machine: {machine()}")
    options = Options(
        args.requests,
        args.cards,
        args.warmup,
        args.warmup_cards,
        args.concurrency,
        args.batch,
        args.smoke,
    )
    # This process is the Slack stand-in, which keeps every form and message it was sent:
    # at CPython's default thresholds its collector walks them all every second or so.
    memory.tune_collector()
    bot, bare = asyncio.run(measure(options))
    summary, met = report(bot, bare, options)
    print(summary)
    return 0 if met or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
