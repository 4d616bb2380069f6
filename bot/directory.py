"""Who is in the approver groups: Slack user groups resolved with usergroups.users.list,
cached for a few minutes so a membership change in Slack is honoured without a restart.
And each person's time zone, from users.info, cached the same way."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from workflows import approval_rules
from workflows.model import Actor
from workflows.policy import Policy

log = logging.getLogger(__name__)
DEFAULT_TTL_SECONDS = 300.0
#: The longest a click waits for a group Slack was never asked about (Slack wants an
#: answer to every click within 3 s).
FIRST_LOOKUP_SECONDS = 1.5


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
        self.ttl = ttl_seconds
        self.monotonic = monotonic
        self.use(policy)
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshing: dict[str, asyncio.Future[frozenset[str]]] = {}
        self._zones: dict[str, tuple[float, str | None]] = {}
        self._zone_refreshing: dict[str, asyncio.Future[str | None]] = {}

    def use(self, policy: Policy) -> None:
        """The groups that decide are this policy's from now on (its names resolved,
        bot.names): approvers, emergency approvers, owners of services, high-risk approvers."""
        self.groups = approval_rules.groups_named(policy)

    async def actor(self, user_id: str) -> Actor:
        """The person, with the groups of the policy they belong to (approvers, emergency
        approvers, owners of services, high-risk approvers)."""
        memberships = await asyncio.gather(*(self.members(group) for group in self.groups))
        member_of = [
            g for g, members in zip(self.groups, memberships, strict=True) if user_id in members
        ]
        return Actor(user_id, frozenset(member_of))

    async def members(self, group: str) -> frozenset[str]:
        """Who is in the group. Slack is asked at most once per TTL; past the TTL the last
        known members answer at once while a refresh runs, so no click waits on Slack."""
        cached = self._cache.get(group)
        if cached and self.monotonic() - cached[0] < self.ttl:
            return cached[1]
        if cached:
            self._refresh_soon(group)
            return cached[1]
        try:
            return await asyncio.wait_for(
                asyncio.shield(self._refresh(group)), FIRST_LOOKUP_SECONDS
            )
        except TimeoutError:
            log.warning("user group %s is slow to answer; treating it as empty for now", group)
            return frozenset()

    async def known_members(self, groups: Iterable[str]) -> dict[str, frozenset[str]]:
        """The members of each group Slack has answered about; a group it has not (slow,
        refusing, unknown) is left out, so nobody concludes it is empty."""
        asked = tuple(dict.fromkeys(groups))
        memberships = await asyncio.gather(*(self.members(group) for group in asked))
        return {
            group: members
            for group, members in zip(asked, memberships, strict=True)
            if group in self._cache
        }

    async def refreshed(self) -> None:
        """Wait for the refreshes in progress (for tests, and before shutting down)."""
        await asyncio.gather(
            *self._refreshing.values(), *self._zone_refreshing.values(), return_exceptions=True
        )

    async def time_zone(self, user_id: str) -> str | None:
        """The person's time zone as Slack says it (users.info's `user.tz`, an IANA name), or
        None when Slack does not say or cannot be asked. Asked at most once per TTL; past
        it the last answer is used while a refresh runs."""
        cached = self._zones.get(user_id)
        if cached and self.monotonic() - cached[0] < self.ttl:
            return cached[1]
        if cached:
            task = self._zone_refreshing.get(user_id)
            if task is None or task.done():
                self._zone_refreshing[user_id] = asyncio.ensure_future(self._read_zone(user_id))
            return cached[1]
        try:
            return await asyncio.wait_for(
                asyncio.shield(self._read_zone(user_id)), FIRST_LOOKUP_SECONDS
            )
        except TimeoutError:
            log.warning("users.info is slow to answer for %s; using UTC for now", user_id)
            return None

    async def _read_zone(self, user_id: str) -> str | None:
        cached = self._zones.get(user_id)
        try:
            response = await self.client.users_info(user=user_id)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
            why = error.response.get("error") if isinstance(error, SlackApiError) else error
            log.warning("could not read %s's time zone (%r)", user_id, why)
            return cached[1] if cached else None
        zone = (response.get("user") or {}).get("tz")
        found = zone if isinstance(zone, str) and zone else None
        self._zones[user_id] = (self.monotonic(), found)
        return found

    def _refresh_soon(self, group: str) -> None:
        task = self._refreshing.get(group)
        if task is None or task.done():
            self._refreshing[group] = asyncio.ensure_future(self._refresh(group))

    async def _refresh(self, group: str) -> frozenset[str]:
        lock = self._locks.setdefault(group, asyncio.Lock())
        async with lock:
            cached = self._cache.get(group)
            if cached and self.monotonic() - cached[0] < self.ttl:
                return cached[1]
            try:
                response = await self.client.usergroups_users_list(usergroup=group)
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
                # Keep the last known membership rather than lock every approver out (or
                # fail every click) while Slack refuses, is unreachable or is slow.
                why = error.response.get("error") if isinstance(error, SlackApiError) else error
                log.warning(
                    "could not read user group %s (%r); using the last known members", group, why
                )
                return cached[1] if cached else frozenset()
            members = frozenset(response.get("users") or ())
            self._cache[group] = (self.monotonic(), members)
            return members

    async def approver_ids(self, policy: Policy, *, emergency: bool) -> frozenset[str]:
        """Everyone who may approve: named users and the members of named groups."""
        approvers = policy.emergency_approvers if emergency else policy.approvers
        people = set(approvers.users)
        for group in approvers.groups:
            people |= await self.members(group)
        return frozenset(people)
