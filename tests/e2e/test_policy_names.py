"""The real `changebot serve` with a policy written with @handles and #names: it resolves them
before it listens, and an unknown one stops it with the key and the name, exit code 2."""

from __future__ import annotations

import asyncio
from pathlib import Path

from standin import SlackStandIn
from tests.e2e.harness import BotProcess, policy_toml

BY_NAME = policy_toml(changes_channel="#changes").replace(
    'groups = ["S0APPROVERS"]', 'groups = ["@approvers"]'
)


async def test_serve_resolves_the_names_before_it_listens(
    slack: SlackStandIn, tmp_path: Path
) -> None:
    bot = await BotProcess(slack, tmp_path, policy=BY_NAME).start()
    try:
        output = bot.output()
    finally:
        assert bot.stop() == 0

    assert "policy approvers.groups[0]: @approvers is S0APPROVERS" in output
    assert "policy channels.changes: #changes is C0CHANGES" in output


async def test_serve_stops_at_a_name_the_workspace_does_not_know(
    slack: SlackStandIn, tmp_path: Path
) -> None:
    policy = BY_NAME.replace('"@approvers"', '"@payments-oncall"')
    bot = await BotProcess(slack, tmp_path, policy=policy).start(wait_for="")
    assert bot.process is not None

    code = await asyncio.to_thread(bot.process.wait, 30)

    assert code == 2
    assert (
        bot.output()
        .strip()
        .endswith(
            f"changebot: Bad change policy in {tmp_path / 'policy.toml'}: approvers.groups[0]: "
            "no user group @payments-oncall in this workspace"
        )
    )
