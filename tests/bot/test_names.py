"""A policy written with @handles and #channel names: resolved through Slack's Web API when the
bot starts (an unknown name stops it, naming the key), followed when a handle moves, and kept
when Slack cannot be asked. The whole bot in this process against the Slack stand-in."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot import ids
from bot.names import PAGE, PolicyNames
from bot.settings import ConfigError
from standin import SlackStandIn
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually, policy_toml, workspace
from tests.e2e.steps import buttons, latest, request_change, review_and_test
from workflows.errors import PolicyError
from workflows.policy import Policy, parse_policy
from workflows.stages import Action

#: The harness's policy, with a name wherever it had an ID.
BY_NAME = (
    policy_toml(changes_channel="#changes")
    .replace('owner = "U0CAROL"', 'owner = "@carol"')
    .replace('users = ["U0CAROL"]', 'users = ["@Carol"]')
    .replace('groups = ["S0APPROVERS"]', 'groups = ["@approvers"]')
)


async def approved_by(served: InProcess, user: str) -> bool:
    """Whether `user` may approve a fresh change: the card moves on to deployment."""
    card = await request_change(served.driver, served.slack)
    await review_and_test(served.driver, served.slack, card)
    await served.driver.click(user, latest(served.slack, card), ids.card_action_id(Action.APPROVE))
    try:
        await eventually(
            lambda: "start_deployment" in buttons(latest(served.slack, card)), timeout=3
        )
    except AssertionError:
        return False
    return True


async def test_a_policy_written_with_handles_and_channel_names_starts_and_uses_their_ids(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async with in_process(sqlite_template, tmp_path, BY_NAME) as served:
        policy = served.bot.services.policy

        assert policy.policy.owner == "U0CAROL"
        assert policy.approvers.users == ("U0CAROL",)
        assert policy.approvers.groups == ("S0APPROVERS",)
        assert policy.channels.changes == "C0CHANGES"
        assert policy.catalog[0].owner == "U0CAROL"
        # The card goes to #changes by its ID (request_change waits for it in C0CHANGES), and
        # Dave approves as a member of @approvers.
        assert await approved_by(served, "U0DAVE")
        called = {c.method for c in served.slack.calls}
        assert {"users.list", "usergroups.list", "conversations.list"} <= called


async def test_every_part_of_the_bot_reads_the_resolved_policy(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async with in_process(sqlite_template, tmp_path, BY_NAME) as served:
        # The policy as written stays with what resolves it, for the next refresh.
        holders = {k: p for k, p in _policies(served.bot) if not k.startswith("bot.names.")}

        assert holders, "the walk found nothing"
        assert {id(p) for p in holders.values()} == {id(served.bot.services.policy)}, holders
        assert served.bot.services.directory.groups == ("S0APPROVERS",)


def _policies(root: Any, path: str = "bot", depth: int = 3) -> list[tuple[str, Policy]]:
    """Every policy held by the bot's own objects, a few attributes deep."""
    found: list[tuple[str, Policy]] = []
    for name, value in vars(root).items():
        if isinstance(value, Policy):
            found.append((f"{path}.{name}", value))
        elif depth and type(value).__module__.startswith("bot.") and hasattr(value, "__dict__"):
            found += _policies(value, f"{path}.{name}", depth - 1)
    return found


async def test_an_unknown_name_stops_start_up_naming_the_key_and_the_name(
    sqlite_template: Path, tmp_path: Path
) -> None:
    policy = BY_NAME.replace('"@approvers"', '"@payments-oncall"')

    with pytest.raises(PolicyError) as raised:
        async with in_process(sqlite_template, tmp_path, policy):
            pass

    assert str(raised.value) == (
        "Bad change policy in the default policy: approvers.groups[0]: "
        "no user group @payments-oncall in this workspace"
    )


async def test_a_user_group_id_that_does_not_exist_stops_start_up(
    sqlite_template: Path, tmp_path: Path
) -> None:
    policy = policy_toml().replace('groups = ["S0APPROVERS"]', 'groups = ["S0GONE"]')

    with pytest.raises(PolicyError) as raised:
        async with in_process(sqlite_template, tmp_path, policy):
            pass

    assert raised.value.key == "approvers.groups[0]"
    assert raised.value.problem.startswith("no user group S0GONE in this workspace")


async def test_names_need_slack_at_start_and_ids_do_not(caplog: pytest.LogCaptureFixture) -> None:
    async with SlackStandIn(workspace()) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)
        by_name = PolicyNames(parse_policy(BY_NAME), client, "policy.toml")
        by_id = PolicyNames(parse_policy(policy_toml()), client, "policy.toml")

        slack.fail_next("usergroups.list", "missing_scope")
        with pytest.raises(ConfigError) as raised:
            await by_name.at_start()
        slack.fail_next("usergroups.list", "missing_scope")
        policy, warnings = await by_id.at_start()

    assert str(raised.value).startswith(
        "cannot resolve the policy's @handles and #names: Slack's usergroups.list failed "
        "(missing_scope; the app needs the usergroups:read scope)."
    )
    assert policy is by_id.written and warnings == []
    assert "could not check the policy's user groups in Slack" in caplog.text


async def test_people_and_channels_are_read_a_page_at_a_time(
    sqlite_template: Path, tmp_path: Path
) -> None:
    slack = workspace()
    for n in range(PAGE + 5):  # more than a page of people, the one named last
        slack.add_user(f"U1{n:04d}", f"person{n}")
        slack.add_channel(f"C1{n:04d}", f"room-{n}")
    policy = BY_NAME.replace('"@Carol"', f'"@person{PAGE + 4}"').replace(
        '"#changes"', f'"#room-{PAGE + 2}"'
    )

    async with in_process(sqlite_template, tmp_path, policy, slack) as served:
        assert served.bot.services.policy.approvers.users == (f"U1{PAGE + 4:04d}",)
        assert served.bot.services.policy.channels.changes == f"C1{PAGE + 2:04d}"
        assert len(served.slack.calls_to("users.list")) == 2
        assert len(served.slack.calls_to("conversations.list")) == 2


async def test_a_handle_that_moves_to_another_group_is_followed_after_a_refresh(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async with in_process(sqlite_template, tmp_path, BY_NAME) as served:
        ws = served.slack.workspace
        ws.set_usergroup("S0APPROVERS", ["U0DAVE"], handle="old-approvers")
        ws.set_usergroup("S0NEWCAB", ["U0ERIN"], handle="approvers")

        await served.bot.refresh_names()

        assert served.bot.services.policy.approvers.groups == ("S0NEWCAB",)
        assert served.bot.services.directory.groups == ("S0NEWCAB",)
        assert await approved_by(served, "U0ERIN")


async def test_a_failed_refresh_keeps_the_last_resolution_and_says_why(
    sqlite_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with in_process(sqlite_template, tmp_path, BY_NAME) as served:
        before = served.bot.services.policy
        served.slack.fail_next("usergroups.list", "internal_error")
        await served.bot.refresh_names()
        served.slack.workspace.set_usergroup("S0APPROVERS", ["U0DAVE"], handle="renamed")
        await served.bot.refresh_names()

        assert served.bot.services.policy is before
        assert "Slack's usergroups.list failed (internal_error)" in caplog.text
        assert "approvers.groups[0]: no user group @approvers in this workspace" in caplog.text
        assert caplog.text.count("keeping the last ones") == 2
        assert await approved_by(served, "U0DAVE")


async def test_serve_warns_at_start_when_nobody_can_approve(
    sqlite_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slack = workspace()
    slack.set_usergroup("S0APPROVERS", [], handle="approvers")
    policy = BY_NAME.replace('users = ["@Carol"]', "users = []")

    with caplog.at_level(logging.WARNING, logger="bot.app"):
        async with in_process(sqlite_template, tmp_path, policy, slack) as served:
            assert not await approved_by(served, "U0CAROL")

    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert warnings == [
        "Nobody can approve a Normal change: the user groups in approvers.groups have no "
        "members in Slack; add people to them, or name people in approvers.users.",
        "Nobody can approve an emergency change: emergency.approver_users and "
        "emergency.approver_groups are empty, so the approvers of Normal changes approve "
        "emergencies too, and there are none.",
    ]


@pytest.mark.parametrize("group", ["S0GONE", "@nope"])
async def test_an_owner_group_that_does_not_exist_stops_start_up(
    sqlite_template: Path, tmp_path: Path, group: str
) -> None:
    policy = policy_toml() + f'\n[[owners]]\nservices = ["payments"]\ngroups = ["{group}"]\n'

    with pytest.raises(PolicyError) as raised:
        async with in_process(sqlite_template, tmp_path, policy):
            pass

    assert raised.value.key == "owners[0].groups[0]"
    assert raised.value.problem.startswith(f"no user group {group} in this workspace")
