"""What the acknowledgement and memory benchmarks share: changes waiting for approval, the app
under test in a process of its own, the load written down and sent from another process."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from statistics import median
from typing import Any

from sqlmodel import Session, col, func, select

from bench.load import Request, write_requests
from bench.report import percentile
from bot.ids import card_action_id
from standin import Reply, SlackDriver, SlackStandIn
from standin.transport import Delivery
from storage.db import make_engine
from storage.migrate import upgrade
from storage.tables import AuditEventRow
from storage.uow import SqlUnitOfWork
from tests.e2e.harness import (
    SIGNING_SECRET,
    BotProcess,
    engine_of,
    eventually,
    everything_shown,
    free_port,
    policy_toml,
)
from workflows import process
from workflows.model import Actor, ChangeDetails, Classification, Level, Rollback, Window
from workflows.policy import parse_policy
from workflows.ports import SystemClock
from workflows.stages import Action

CHANGES_CHANNEL = "C0CHANGES"
REQUESTERS = ["U0ALICE", "U0BOB", "U0ERIN"]
APPROVER = "U0CAROL"  # named in the policy: no user group lookup stands in the way
APPROVE = card_action_id(Action.APPROVE)


def seed_awaiting_approval(database_url: str, count: int) -> None:
    """`count` Normal changes, reviewed and tested, each waiting for one approval.

    They are made by the real use cases, so the bot's outbox holds their cards: the bot
    posts them when it starts, as it would after a restart.
    """
    engine = make_engine(database_url)
    upgrade(engine)
    policy = parse_policy(policy_toml(), "bench policy")
    clock = SystemClock()
    start = clock.now().replace(microsecond=0) + timedelta(days=7)
    alice, bob = Actor("U0ALICE"), Actor("U0BOB")
    for i in range(count):
        details = ChangeDetails(
            title=f"Raise the API connection pool to {50 + i}",
            classification=Classification.NORMAL,
            scope="code",
            description="The pool runs dry at peak; more leaves headroom.",
            services=("api",),
            risk=Level.LOW,
            impact=Level.LOW,
            rollback=Rollback(plan="Revert the commit and redeploy."),
            window=Window(start, start + timedelta(hours=1)),
        )
        uow = SqlUnitOfWork(engine)
        change = process.request_change(uow, clock, policy, alice, details).change
        number = change.number
        process.record_review(
            uow, clock, policy, number, bob, assessment="Looks safe.", risk=Level.LOW
        )
        process.add_test_evidence(
            uow, clock, policy, number, alice, evidence="Staging green for an hour."
        )
    engine.dispose()


class Recorder:
    """A transport that keeps what the driver would send, to be sent later by the load."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    async def send(self, delivery: Delivery) -> Reply:
        self.deliveries.append(delivery)
        return Reply(200)


async def build_load(
    slack: SlackStandIn, commands: int, clicks: int, *, seed: int = 42, skip_cards: int = 0
) -> list[Request]:
    """`commands` new-change `/change` commands from requesters, and Approve clicks by an
    approver on `clicks` cards (from the `skip_cards`-th oldest on), shuffled together."""
    recorder = Recorder()
    driver = SlackDriver("http://unused", SIGNING_SECRET, slack)
    driver.transport = recorder
    rng = random.Random(seed)
    kinds: list[str] = []
    for _ in range(commands):
        await driver.slash_command(rng.choice(REQUESTERS), "/change")
        kinds.append("/change")
    cards = [m for m in slack.messages(CHANGES_CHANNEL) if has_approve(m)][skip_cards:]
    if len(cards) < clicks:
        raise RuntimeError(f"only {len(cards)} cards await approval; {clicks} wanted")
    for card in cards[:clicks]:
        await driver.click(APPROVER, card, APPROVE)
        kinds.append("approve")
    requests = [
        Request(kind, d.content_type, d.body)
        for kind, d in zip(kinds, recorder.deliveries, strict=True)
    ]
    rng.shuffle(requests)
    return requests


def has_approve(message: dict[str, Any]) -> bool:
    return any(
        element.get("action_id") == APPROVE
        for block in message.get("blocks") or []
        for element in block.get("elements") or []
    )


async def all_shown(
    bot: BotProcess, *, timeout: float = 600.0, also: Callable[[], bool] | None = None
) -> None:
    """Wait until the bot has shown in Slack all its database owes (and `also` holds): its
    work after the acknowledgements is done."""
    await eventually(
        lambda: everything_shown(bot) and (also is None or also()), timeout=timeout, interval=0.2
    )


def approvals_made(bot: BotProcess) -> int:
    """Approvals recorded in the bot's audit trail so far."""
    approved = select(func.count()).where(col(AuditEventRow.action) == Action.APPROVE.past)
    with Session(engine_of(bot)) as session:
        return session.exec(approved).one()


@dataclass
class Served:
    """An app under test: where to send requests, and its process."""

    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@asynccontextmanager
async def changebot(
    slack: SlackStandIn, workdir: Path, database_url: str, *, settle: float = 300.0
) -> AsyncIterator[tuple[Served, BotProcess]]:
    """`changebot serve` on `database_url`, once it has shown every card it owes."""
    bot = await BotProcess(slack, workdir, database_url=database_url).start()
    try:
        await all_shown(bot, timeout=settle)
        assert bot.process is not None
        yield Served("changebot", bot.url + "/slack/events", bot.process), bot
    finally:
        bot.stop()


@asynccontextmanager
async def bare_bolt(slack: SlackStandIn, workdir: Path) -> AsyncIterator[Served]:
    """The baseline: `python -m bench.bare_bolt`, served the same way."""
    port = free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.base_url,
    }
    log = (workdir / f"bare-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_bolt", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_up(url + "/healthz", process)
        yield Served("bare Bolt", url + "/slack/events", process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


async def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url} exited early")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@dataclass(frozen=True)
class Run:
    """What the load measured: per-request kind, status and seconds; the wall time."""

    wall: float
    samples: list[tuple[str, int, float]]
    #: Whether the load ran ahead of the stand-in (`bench.load.run_ahead`).
    ahead: bool = False
    #: CPU seconds the app spent on the run (`cpu_seconds`), all its threads; 0 if unmeasured.
    cpu: float = 0.0

    def latencies(self, kind: str | None = None) -> list[float]:
        return [s for k, _, s in self.samples if kind is None or k == kind]

    @property
    def throughput(self) -> float:
        return len(self.samples) / self.wall

    @property
    def failures(self) -> int:
        return sum(1 for _, status, _ in self.samples if status != 200)

    @property
    def cpu_per_request(self) -> float:
        """The app's CPU seconds per request of the run."""
        return self.cpu / len(self.samples) if self.samples else 0.0


@dataclass
class Rounds:
    """An app's bursts, a round each: every figure is the median of the rounds' figures."""

    name: str
    runs: list[Run] = field(default_factory=list)

    def p(self, q: float, kind: str | None = None) -> float:
        """The median over the rounds of each round's q-th percentile, in ms."""
        return median(percentile(run.latencies(kind), q) for run in self.runs) * 1000

    @property
    def throughput(self) -> float:
        return median(run.throughput for run in self.runs)

    @property
    def failures(self) -> int:
        return sum(run.failures for run in self.runs)

    @property
    def cpu_per_request(self) -> float:
        """The median over the rounds of the app's CPU seconds per request."""
        return median(run.cpu_per_request for run in self.runs)

    def each_p99(self) -> str:
        return " ".join(f"{percentile(run.latencies(), 99) * 1000:.1f}" for run in self.runs)


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system, every thread) process `pid` has used so far.

    On a core of its own an app's throughput is one over its CPU per request, and the CPU
    it spends is counted by the kernel, whatever else the machine was doing meanwhile: a
    steadier figure than requests a second on a noisy machine (clock ticks: 10 ms)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # After the name: state is field 3; utime and stime are fields 14 and 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def send_load(
    url: str, requests: list[Request], concurrency: int, workdir: Path, *, bearer: str = ""
) -> Run:
    """Send `requests` from a separate process (`python -m bench.load`); signed as Slack
    signs, or with `bearer` as a pipeline's API token."""
    fd, name = tempfile.mkstemp(suffix=".jsonl", dir=workdir)
    os.close(fd)
    requests_file, out = Path(name), Path(name).with_suffix(".result.json")
    write_requests(requests_file, requests)
    load = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load",
        "--url",
        url,
        *(["--bearer", bearer] if bearer else ["--secret", SIGNING_SECRET]),
        "--requests",
        str(requests_file),
        "--concurrency",
        str(concurrency),
        "--out",
        str(out),
    )
    if await load.wait() != 0:
        raise RuntimeError("the load process failed")
    result = json.loads(out.read_text(encoding="utf-8"))
    samples = [tuple(s) for s in result["samples"]]
    return Run(result["wall"], samples, result.get("ahead", False))


def pin_apart(app_pid: int) -> None:
    """Give the app under test a core of its own and keep this process (the Slack stand-in)
    and the load it starts on the others, as in production, where Slack and the people
    clicking are not on the bot's machine. Otherwise the stand-in's work for changebot (forms,
    cards) competes with changebot for the same two cores, and a bare app, which calls no Web
    API, is spared it. Both apps are measured so."""
    cpus = sorted(_CORES)
    if len(cpus) < 2:
        return
    for thread in os.listdir(f"/proc/{app_pid}/task"):  # threads started later inherit it
        os.sched_setaffinity(int(thread), cpus[:1])
    os.sched_setaffinity(0, cpus[1:])


def pinning() -> str:
    """How `pin_apart` shares this machine's cores, for the report."""
    cpus = sorted(_CORES)
    if len(cpus) < 2:
        return "one core: the app, the load and the Slack stand-in share it"
    others = len(cpus) - 1
    return (
        f"the app alone on core {cpus[0]}; the load and the Slack stand-in on {others} other(s), "
        "the load ahead where it may (bench.load.run_ahead)"
    )


_CORES = os.sched_getaffinity(0)


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="changebot-bench-") as name:
        yield Path(name)
