"""Approver groups are Slack user groups, read with usergroups.users.list and cached for a few
minutes: a membership change in Slack is honoured once the cache runs out, without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.directory import DEFAULT_TTL_SECONDS, Directory
from standin import SlackStandIn, Workspace
from workflows.model import Classification
from workflows.policy import Policy, parse_policy

GROUP = "S0APPROVERS"
POLICY = parse_policy(
    f"""
[policy]
name = "Test policy"
owner = "U0CAROL"
last_reviewed = 2026-06-01

[approvers]
users = ["U0CAROL"]
groups = ["{GROUP}"]

[[scope]]
id = "code"
name = "Code deployment"
"""
)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    workspace = Workspace()
    for user in ("U0CAROL", "U0DAVE", "U0FRANK"):
        workspace.add_user(user, user.lower()[2:])
    workspace.set_usergroup(GROUP, ["U0DAVE"])
    async with SlackStandIn(workspace) as standin:
        yield standin


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def directory(slack: SlackStandIn, clock: FakeMonotonic) -> Directory:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url)
    return Directory(client, POLICY, monotonic=clock)


async def may_approve(directory: Directory, user: str, policy: Policy = POLICY) -> bool:
    return policy.may_approve(await directory.actor(user), Classification.NORMAL)


async def test_a_member_of_an_approver_group_may_approve(directory: Directory) -> None:
    assert await may_approve(directory, "U0DAVE")
    assert not await may_approve(directory, "U0FRANK")


async def test_a_member_removed_in_slack_can_no_longer_approve_once_the_cache_runs_out(
    slack: SlackStandIn, directory: Directory, clock: FakeMonotonic
) -> None:
    assert await may_approve(directory, "U0DAVE")
    slack.workspace.set_usergroup(GROUP, [])

    clock.advance(DEFAULT_TTL_SECONDS - 1)
    assert await may_approve(directory, "U0DAVE")  # still cached: Slack is not asked again
    assert len(slack.calls_to("usergroups.users.list")) == 1

    clock.advance(2)
    # Past the TTL the last known members answer at once, while Slack is asked again.
    assert await may_approve(directory, "U0DAVE")
    await directory.refreshed()
    assert not await may_approve(directory, "U0DAVE")
    assert len(slack.calls_to("usergroups.users.list")) == 2


async def test_a_member_added_in_slack_may_approve_once_the_cache_runs_out(
    slack: SlackStandIn, directory: Directory, clock: FakeMonotonic
) -> None:
    assert not await may_approve(directory, "U0FRANK")
    slack.workspace.set_usergroup(GROUP, ["U0DAVE", "U0FRANK"])
    assert not await may_approve(directory, "U0FRANK")

    clock.advance(DEFAULT_TTL_SECONDS + 1)
    await directory.actor("U0FRANK")  # answered from the cache; the refresh starts
    await directory.refreshed()

    assert await may_approve(directory, "U0FRANK")
    assert await directory.approver_ids(POLICY, emergency=False) == {
        "U0CAROL",
        "U0DAVE",
        "U0FRANK",
    }


async def test_the_group_is_read_once_per_ttl_however_many_people_ask(
    slack: SlackStandIn, directory: Directory
) -> None:
    for user in ("U0CAROL", "U0DAVE", "U0FRANK", "U0DAVE"):
        await directory.actor(user)

    calls = slack.calls_to("usergroups.users.list")
    assert [call.params for call in calls] == [{"usergroup": GROUP}]


async def test_when_slack_cannot_be_asked_the_last_known_members_still_count(
    slack: SlackStandIn, directory: Directory, clock: FakeMonotonic
) -> None:
    assert await may_approve(directory, "U0DAVE")
    clock.advance(DEFAULT_TTL_SECONDS + 1)
    slack.fail_next("usergroups.users.list", "internal_error")

    assert await may_approve(directory, "U0DAVE")
    await directory.refreshed()
    assert await may_approve(directory, "U0DAVE")
    assert slack.calls_to("usergroups.users.list")[-1].error == "internal_error"


async def test_named_approvers_need_no_group(slack: SlackStandIn, directory: Directory) -> None:
    slack.workspace.set_usergroup(GROUP, [])
    assert await may_approve(directory, "U0CAROL")


async def test_when_slack_does_not_answer_in_time_the_last_known_members_still_count(
    clock: FakeMonotonic,
) -> None:
    workspace = Workspace()
    workspace.set_usergroup(GROUP, ["U0DAVE"])
    async with SlackStandIn(workspace, client_timeout=0.2) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.base_url, timeout=0.2)  # type: ignore[arg-type]
        directory = Directory(client, POLICY, monotonic=clock)
        assert await may_approve(directory, "U0DAVE")
        clock.advance(DEFAULT_TTL_SECONDS + 1)
        slack.fail_next("usergroups.users.list", "timeout")

        assert await may_approve(directory, "U0DAVE")
        await directory.refreshed()
        assert await may_approve(directory, "U0DAVE")
        assert slack.calls_to("usergroups.users.list")[-1].fault == "timeout"


async def test_a_click_never_waits_on_slack_for_a_group_it_already_knows(
    slack: SlackStandIn, directory: Directory, clock: FakeMonotonic
) -> None:
    assert await may_approve(directory, "U0DAVE")
    clock.advance(DEFAULT_TTL_SECONDS + 1)
    slack.delay_all(2.0)  # Slack is slow now

    started = asyncio.get_running_loop().time()
    assert await may_approve(directory, "U0DAVE")
    assert asyncio.get_running_loop().time() - started < 0.5
    slack.delay_all(0)
    await directory.refreshed()


# -- time zones ------------------------------------------------------------------------------


async def test_a_persons_time_zone_is_what_users_info_says(
    slack: SlackStandIn, directory: Directory
) -> None:
    slack.workspace.users["U0DAVE"].tz = "America/New_York"
    assert await directory.time_zone("U0DAVE") == "America/New_York"
    assert [call.params for call in slack.calls_to("users.info")] == [{"user": "U0DAVE"}]


async def test_a_time_zone_is_read_once_per_ttl_then_refreshed(
    slack: SlackStandIn, directory: Directory, clock: FakeMonotonic
) -> None:
    assert await directory.time_zone("U0DAVE") == "Europe/London"
    slack.workspace.users["U0DAVE"].tz = "Asia/Tokyo"
    clock.advance(DEFAULT_TTL_SECONDS - 1)
    assert await directory.time_zone("U0DAVE") == "Europe/London"
    assert len(slack.calls_to("users.info")) == 1

    clock.advance(2)
    assert await directory.time_zone("U0DAVE") == "Europe/London"  # at once, while Slack is asked
    await directory.refreshed()
    assert await directory.time_zone("U0DAVE") == "Asia/Tokyo"
    assert len(slack.calls_to("users.info")) == 2


async def test_no_time_zone_when_slack_does_not_say_or_cannot_be_asked(
    slack: SlackStandIn, directory: Directory
) -> None:
    slack.workspace.users["U0FRANK"].tz = None
    assert await directory.time_zone("U0FRANK") is None
    assert await directory.time_zone("U0NOBODY") is None  # users.info: user_not_found
    slack.fail_next("users.info", "internal_error")
    assert await directory.time_zone("U0CAROL") is None
    # A refusal is not remembered: the next reader asks again.
    assert await directory.time_zone("U0CAROL") == "Europe/London"
