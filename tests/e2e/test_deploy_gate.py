"""Deployments ask changebot first: a pipeline step and a GitHub environment are each held
until the change is approved in Slack, then go on by themselves. The real `changebot serve`,
the real `changebot` command a pipeline runs, Slack's and GitHub's stand-ins, real HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot import ids
from standin import SlackDriver, SlackStandIn
from standin.github import (
    APP_ID,
    WEBHOOK_SECRET,
    GithubStandIn,
    deliver,
    new_private_key,
    protection_rule_request,
)
from tests.e2e.harness import (
    CHANGEBOT,
    SIGNING_SECRET,
    SLOW_MACHINE,
    BotProcess,
    eventually,
    policy_toml,
)
from tests.e2e.steps import (
    click,
    latest,
    normal_request,
    request_change,
    review_and_test,
    settled,
    thread_texts,
)
from workflows.stages import Action

REPO = "acme/billing"
GATED = """
[gate]
environments = ["production"]

[[gate.github]]
repository = "acme/billing"
environment = "production"
services = ["billing-db"]
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def github() -> AsyncIterator[GithubStandIn]:
    async with GithubStandIn(new_private_key_once()) as standin:
        yield standin


_KEY: list[bytes] = []


def new_private_key_once() -> bytes:
    if not _KEY:
        _KEY.append(new_private_key())
    return _KEY[0]


def a_bot(
    slack: SlackStandIn,
    github: GithubStandIn,
    workdir: Path,
    database: str = "changebot.db",
    *,
    lease_seconds: str = "60",
) -> BotProcess:
    """`changebot serve` with the gate's policy and GitHub configured."""
    workdir.mkdir(exist_ok=True)
    key = workdir / "github-app.pem"
    key.write_bytes(new_private_key_once())
    return BotProcess(
        slack,
        workdir,
        database_url=f"sqlite:///{workdir / database}",
        policy=policy_toml(extra=GATED),
        env={
            "GITHUB_APP_ID": APP_ID,
            "GITHUB_APP_PRIVATE_KEY": str(key),
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "GITHUB_API_URL": github.url,
            "CHANGEBOT_SWEEP_SECONDS": "0.5",
            "CHANGEBOT_LEASE_SECONDS": lease_seconds,
        },
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(
    slack: SlackStandIn, workdir: Path, github: GithubStandIn
) -> AsyncIterator[BotProcess]:
    process = await a_bot(slack, github, workdir).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def driver(slack: SlackStandIn, bot: BotProcess) -> SlackDriver:
    return SlackDriver(bot.url + "/slack/events", SIGNING_SECRET, slack, timeout=SLOW_MACHINE)


async def changebot(bot: BotProcess, *argv: str, token: str = "") -> tuple[int, str, str]:
    """The `changebot` command a pipeline runs, against the running bot."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB"))},
        "DATABASE_URL": bot.env["DATABASE_URL"],
        "CHANGEBOT_URL": bot.url,
        "CHANGEBOT_TOKEN": token,
    }
    process = await asyncio.create_subprocess_exec(
        CHANGEBOT,
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def a_token(bot: BotProcess, name: str) -> str:
    code, out, err = await changebot(
        bot, "token", "create", name, "--scopes", "gate,deployments", "--by", "U0CAROL"
    )
    assert code == 0, err
    return out.strip()


def in_its_window(**overrides: Any) -> dict[str, Any]:
    """A request whose window is open now."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    return normal_request(
        **{ids.WINDOW_START: start, ids.WINDOW_END: start + timedelta(hours=2), **overrides}
    )


def ref_of(card: dict[str, Any]) -> str:
    text = str(card["blocks"])
    start = text.index("CHG-")
    return text[start : start + 8]


async def test_a_pipeline_step_is_held_until_the_change_is_approved_in_slack(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    token = await a_token(bot, "ci-billing")
    card = await request_change(driver, slack, values=in_its_window())
    ref = ref_of(card)
    await review_and_test(driver, slack, card)

    gate = asyncio.create_task(
        changebot(
            bot,
            "gate",
            ref,
            "--service",
            "billing-db",
            "--environment",
            "production",
            "--wait",
            "60s",
            "--every",
            "1s",
            token=token,
        )
    )
    waiting = await eventually(
        lambda: [t for t in thread_texts(slack, card) if "is waiting to deploy" in t]
    )
    assert "pipeline `ci-billing` is waiting to deploy billing-db to production" in waiting[0]
    assert "<@U0ALICE>, your change is what it waits for." in waiting[0]
    assert not gate.done()

    await click(driver, slack, "U0CAROL", card, Action.APPROVE)
    code, out, _ = await asyncio.wait_for(gate, timeout=30)

    assert code == 0, out
    assert f"{ref}: billing-db to production is AWAITING" in out
    assert f"{ref}: billing-db to production is ALLOWED after" in out

    started = await changebot(
        bot,
        "deployment",
        "start",
        ref,
        "--service",
        "billing-db",
        "--environment",
        "production",
        "--id",
        "run-41",
        token=token,
    )
    finished = await changebot(
        bot,
        "deployment",
        "finish",
        ref,
        "--id",
        "run-41",
        "--outcome",
        "successful",
        token=token,
    )
    assert (started[0], finished[0]) == (0, 0), started[2] + finished[2]
    await settled(bot, slack)
    shown = str(latest(slack, card)["blocks"])
    assert "Gate allowed* pipeline `ci-billing` to deploy billing-db to production" in shown
    assert "*Deployment* run-41 by pipeline `ci-billing`" in shown and "Closed" in shown
    assert any("🟢 The gate allowed pipeline `ci-billing`" in t for t in thread_texts(slack, card))


async def test_a_github_environment_is_held_until_the_change_is_approved_in_slack(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess, github: GithubStandIn
) -> None:
    card = await request_change(driver, slack, values=in_its_window())
    ref = ref_of(card)
    await review_and_test(driver, slack, card)
    github.hold(REPO, 9001, "production")

    status, _ = await deliver(
        bot.url + "/github/webhook",
        protection_rule_request(REPO, "production", 9001, ref=f"release/{ref}"),
    )
    assert status == 202
    held = github.held[(REPO, 9001, "production")]
    report = await eventually(lambda: held.reports)
    assert report[0].startswith(f"changebot holds this deployment until {ref} allows it")
    await eventually(
        lambda: any(
            "GitHub is waiting to deploy billing-db" in t for t in thread_texts(slack, card)
        )
    )
    assert held.state == ""

    await click(driver, slack, "U0CAROL", card, Action.APPROVE)

    await eventually(lambda: held.state == "approved", timeout=15)
    assert held.comment.startswith(f"changebot allows this deployment under {ref}.")
    await asyncio.sleep(1.5)  # three more sweeps: nothing is sent again
    answers = [a for a in github.answers() if "/runs/9001/" in a.path]
    assert len(answers) == 1


async def test_an_answer_github_could_not_take_survives_a_crash_and_is_given_once(
    slack: SlackStandIn, github: GithubStandIn, workdir: Path
) -> None:
    crashing = await a_bot(slack, github, workdir / "crash", "crash.db", lease_seconds="3").start()
    crash_driver = SlackDriver(
        crashing.url + "/slack/events", SIGNING_SECRET, slack, timeout=SLOW_MACHINE
    )
    card = await request_change(crash_driver, slack, values=in_its_window())
    ref = ref_of(card)
    await review_and_test(crash_driver, slack, card)
    github.hold(REPO, 9002, "production")
    await deliver(
        crashing.url + "/github/webhook",
        protection_rule_request(REPO, "production", 9002, ref=ref),
    )
    held = github.held[(REPO, 9002, "production")]
    await eventually(lambda: held.reports)

    github.failures = [503] * 1000  # GitHub is down
    await click(crash_driver, slack, "U0CAROL", card, Action.APPROVE)
    await eventually(lambda: any(c.status == 503 and "/runs/9002/" in c.path for c in github.calls))
    crashing.stop(signal.SIGKILL)  # the replica dies mid-retry, its lease still held
    github.failures = []

    replacement = await a_bot(
        slack, github, workdir / "crash", "crash.db", lease_seconds="3"
    ).start()
    try:
        await eventually(
            lambda: held.state == "approved",
            timeout=30,
            explain=lambda: (
                f"the replica that died:\n{crashing.output()[-4000:]}\n"
                f"its replacement:\n{replacement.output()[-6000:]}\n"
                f"GitHub's calls: {[(c.path, c.status) for c in github.calls][-20:]}"
            ),
        )
        await asyncio.sleep(1.0)
        assert len([a for a in github.answers() if "/runs/9002/" in a.path]) == 1
        assert held.comment.startswith(f"changebot allows this deployment under {ref}.")
    finally:
        replacement.stop()
