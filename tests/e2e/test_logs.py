"""The bot's logs: one JSON object per line with `--log-format json`, a line per request with
its ID, a line per state change with the change's reference and the same ID; and no token,
signing secret or database password anywhere in them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot import ids
from standin import Reply, SlackDriver, SlackStandIn
from standin.signing import signed_headers
from tests.e2e.harness import CHANGEBOT, SIGNING_SECRET, BotProcess, eventually
from tests.e2e.steps import normal_request, open_request_form, quiet


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(slack: SlackStandIn, workdir: Path) -> AsyncIterator[BotProcess]:
    process = BotProcess(slack, workdir, extra_args=["--log-format", "json"])
    await process.start()
    try:
        yield process
    finally:
        process.stop()


def request_id_of(reply: Reply) -> str:
    headers = {str(name).lower(): value for name, value in reply.headers.items()}
    return headers["x-request-id"]


def lines(bot: BotProcess) -> list[dict[str, Any]]:
    """Every line of the bot's log, each of which must be a JSON object."""
    parsed = []
    for line in bot.output().splitlines():
        record = json.loads(line)
        assert {"ts", "level", "logger", "message", "request_id"} <= record.keys(), record
        parsed.append(record)
    return parsed


async def test_a_request_and_the_state_change_it_made_share_a_request_id(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    reply = await driver.slash_command("U0ALICE", "/change", "new", channel="C0CHANGES")
    assert reply.status == 200
    command_id = request_id_of(reply)
    await eventually(lambda: slack.open_modal("U0ALICE"))
    submitted = await driver.submit_modal(
        "U0ALICE", normal_request(**{ids.TITLE: "Logs: one line per request"})
    )
    assert submitted.status == 200, submitted.text
    submit_id = request_id_of(submitted)
    assert submit_id != command_id

    requests = [r for r in lines(bot) if r["message"].startswith("POST /slack/events ")]
    assert any(r["request_id"] == command_id and " 200 " in r["message"] for r in requests)
    assert any(r["request_id"] == submit_id and " 200 " in r["message"] for r in requests)
    changed = await eventually(
        lambda: [r for r in lines(bot) if r["message"].startswith("request_change CHG-")]
    )
    assert changed[-1]["request_id"] == submit_id
    assert changed[-1]["ref"] in changed[-1]["message"] and "by U0ALICE" in changed[-1]["message"]


async def test_tokens_and_secrets_never_reach_the_log(
    slack: SlackStandIn, driver: SlackDriver, bot: BotProcess
) -> None:
    # Errors worth logging: Slack refusing the token, and a forged request.
    slack.fail_next("chat.postMessage", "invalid_auth")
    await open_request_form(driver, slack, "U0ALICE")
    values = normal_request(**{ids.TITLE: "Logs: Slack refuses the token"})
    assert (await driver.submit_modal("U0ALICE", values)).status == 200
    await eventually(lambda: "invalid_auth" in bot.output())
    body = b"command=%2Fchange&text=new&user_id=U0ALICE"
    forged = await driver.post_raw(body, headers=signed_headers(body, "forged-secret-123"))
    assert forged.status == 401
    refused = [r for r in lines(bot) if r["request_id"] == request_id_of(forged)]
    assert refused[-1]["message"].startswith("POST /slack/events 401 ")
    await open_request_form(driver, slack, "U0ERIN")
    await quiet(slack, 0.5)

    output = bot.output()
    assert slack.bot_token not in output and slack.app_token not in output
    assert SIGNING_SECRET not in output
    assert "xoxb-" not in output and "xapp-" not in output
    lines(bot)  # and still one JSON object per line


async def test_a_database_password_is_never_printed() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://u:s3cretpw@127.0.0.1:1/x"}
    for command in (["audit", "verify"], ["db", "status"], ["serve", "--port", "1"]):
        done = subprocess.run([CHANGEBOT, *command], env=env, capture_output=True, text=True)
        assert done.returncode != 0
        assert "s3cretpw" not in done.stdout + done.stderr, (command, done.stderr)
