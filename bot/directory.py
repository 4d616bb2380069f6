"""Who is in the groups that decide: Slack user groups resolved with usergroups.users.list,
cached for a few minutes so a membership change in Slack is honoured without a restart.
And each person's time zone, from users.info, cached the same way (SlackCache)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from workflows import approval_rules
from workflows.model import Actor
from workflows.policy import Policy

log = logging.getLogger(__name__)
V = TypeVar("V")
DEFAULT_TTL_SECONDS = 300.0
#: The longest a click waits for a group Slack was never asked about (Slack wants an
#: answer to every click within 3 s).
FIRST_LOOKUP_SECONDS = 1.5


class _Unanswered(Exception):
    """Slack could not say (refused, unreachable or slow): the cache keeps what it knew."""


class SlackCache(Generic[V]):
    """Answers read from Slack, by key, kept `ttl` seconds. Past the TTL the last answer is
    given at once while one refresh runs, so no click waits on Slack; a key never asked
    about waits for its first answer at most FIRST_LOOKUP_SECONDS, then gets `unknown`.
    When Slack cannot answer, the last answer stays (or `unknown`, when there is none)."""

    def __init__(
        self,
        read: Callable[[str], Awaitable[V]],
        unknown: V,
        ttl: float,
        monotonic: Callable[[], float],
        slow: str,
    ) -> None:
        self._read = read
        self._unknown = unknown
        self._ttl = ttl
        self._monotonic = monotonic
        self._slow = slow
        self._known: dict[str, tuple[float, V]] = {}
        self._reading: dict[str, asyncio.Future[V]] = {}

    def knows(self, key: str) -> bool:
        return key in self._known

    async def get(self, key: str) -> V:
        cached = self._known.get(key)
        if cached and self._monotonic() - cached[0] < self._ttl:
            return cached[1]
        reading = self._reading.get(key)
        if reading is None or reading.done():
            reading = self._reading[key] = asyncio.ensure_future(self._refresh(key))
        if cached:
            return cached[1]
        try:
            return await asyncio.wait_for(asyncio.shield(reading), FIRST_LOOKUP_SECONDS)
        except TimeoutError:
            log.warning(self._slow, key)
            return self._unknown

    async def settled(self) -> None:
        """Wait for the reads in progress."""
        await asyncio.gather(*self._reading.values(), return_exceptions=True)

    async def _refresh(self, key: str) -> V:
        try:
            value = await self._read(key)
        except _Unanswered:
            cached = self._known.get(key)
            return cached[1] if cached else self._unknown
        self._known[key] = (self._monotonic(), value)
        return value


class Directory:
    def __init__(
        self,
        client: AsyncWebClient,
        policy: Policy,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.use(policy)
        self._groups = SlackCache(
            self._read_members,
            frozenset[str](),
            ttl_seconds,
            monotonic,
            "user group %s is slow to answer; treating it as empty for now",
        )
        self._zones = SlackCache[str | None](
            self._read_zone,
            None,
            ttl_seconds,
            monotonic,
            "users.info is slow to answer for %s; using UTC for now",
        )

    def use(self, policy: Policy) -> None:
        """The groups that decide are this policy's from now on (its names resolved,
        bot.names): approvers, emergency approvers, owners of services, high-risk approvers,
        and those who decide what the Standard change catalog holds."""
        self.groups = tuple(
            dict.fromkeys([*approval_rules.groups_named(policy), *policy.catalog_approvers.groups])
        )

    async def actor(self, user_id: str) -> Actor:
        """The person, with the groups of the policy they belong to (approvers, emergency
        approvers, owners of services, high-risk approvers)."""
        memberships = await asyncio.gather(*(self.members(group) for group in self.groups))
        member_of = [
            g for g, members in zip(self.groups, memberships, strict=True) if user_id in members
        ]
        return Actor(user_id, frozenset(member_of))

    async def members(self, group: str) -> frozenset[str]:
        """Who is in the group (usergroups.users.list), asked at most once per TTL."""
        return await self._groups.get(group)

    async def known_members(self, groups: Iterable[str]) -> dict[str, frozenset[str]]:
        """The members of each group Slack has answered about; a group it has not (slow,
        refusing, unknown) is left out, so nobody concludes it is empty."""
        asked = tuple(dict.fromkeys(groups))
        memberships = await asyncio.gather(*(self.members(group) for group in asked))
        return {
            group: members
            for group, members in zip(asked, memberships, strict=True)
            if self._groups.knows(group)
        }

    async def refreshed(self) -> None:
        """Wait for the refreshes in progress (for tests, and before shutting down)."""
        await asyncio.gather(self._groups.settled(), self._zones.settled())

    async def time_zone(self, user_id: str) -> str | None:
        """The person's time zone as Slack says it (users.info's `user.tz`, an IANA name), or
        None when Slack does not say or cannot be asked; asked at most once per TTL."""
        return await self._zones.get(user_id)

    async def _read_members(self, group: str) -> frozenset[str]:
        # Slack refusing, unreachable or slow keeps the last known membership rather than
        # lock every approver out (or fail every click).
        response = await _asked(
            self.client.usergroups_users_list(usergroup=group),
            f"could not read user group {group} (%r); using the last known members",
        )
        return frozenset(response.get("users") or ())

    async def _read_zone(self, user_id: str) -> str | None:
        response = await _asked(
            self.client.users_info(user=user_id), f"could not read {user_id}'s time zone (%r)"
        )
        zone = (response.get("user") or {}).get("tz")
        return zone if isinstance(zone, str) and zone else None

    async def approver_ids(self, policy: Policy, *, emergency: bool) -> frozenset[str]:
        """Everyone who may approve: named users and the members of named groups."""
        approvers = policy.emergency_approvers if emergency else policy.approvers
        people = set(approvers.users)
        for group in approvers.groups:
            people |= await self.members(group)
        return frozenset(people)


async def _asked(call: Awaitable[Any], failed: str) -> Any:
    """Slack's answer to `call`, or _Unanswered (logged with `failed`) when it gives none."""
    try:
        return await call
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
        why = error.response.get("error") if isinstance(error, SlackApiError) else error
        log.warning(failed, why)
        raise _Unanswered() from error
