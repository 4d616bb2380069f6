"""The policy's `@handles` and `#names`, resolved through Slack's Web API: at start-up, where an
unknown name stops changebot naming the policy key, and again every few minutes, so a handle
that moves to another group (or person, or channel) is followed without a restart.

What Slack is asked: users.list (people named by @handle), usergroups.list (any user group the
policy names, by handle or ID: whether it exists, and who is in it), conversations.list
(channels named by #name). Only what the policy needs, read a page at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import ConfigError
from workflows.errors import PolicyError
from workflows.names import (
    Channel,
    Group,
    Person,
    Resolution,
    Workspace,
    kinds_to_read,
    nobody_approves,
    references,
    resolve,
)
from workflows.policy import Policy, SlackKind

log = logging.getLogger(__name__)
#: How often the names are read again.
REFRESH_SECONDS = 600.0
#: Items asked for per page (Slack recommends no more than 200).
PAGE = 200
#: What each method needs, for the sentence when Slack refuses for want of a scope.
_SCOPES = {
    "users.list": "users:read",
    "usergroups.list": "usergroups:read",
    "conversations.list": "channels:read and groups:read",
}


class SlackRefused(Exception):
    """Slack did not answer a directory read (refused, unreachable or too slow)."""

    def __init__(self, method: str, why: str) -> None:
        scope = f"; the app needs the {_SCOPES[method]} scope" if why == "missing_scope" else ""
        super().__init__(f"Slack's {method} failed ({why}{scope})")
        self.method = method
        self.why = why


async def read_workspace(client: AsyncWebClient, kinds: frozenset[SlackKind]) -> Workspace:
    """The people, user groups and channels of the workspace, of the kinds asked for."""
    return Workspace(
        people=await _people(client) if SlackKind.USER in kinds else None,
        groups=await _groups(client) if SlackKind.GROUP in kinds else None,
        channels=await _channels(client) if SlackKind.CHANNEL in kinds else None,
    )


async def _people(client: AsyncWebClient) -> list[Person]:
    members = await _pages(
        "users.list", "members", lambda cursor: client.users_list(limit=PAGE, cursor=cursor)
    )
    return [
        Person(m["id"], str(m.get("name") or ""), str(_profile(m).get("display_name") or ""))
        for m in members
        if m.get("id") and not m.get("deleted")
    ]


def _profile(member: dict[str, Any]) -> dict[str, Any]:
    profile = member.get("profile")
    return profile if isinstance(profile, dict) else {}


async def _groups(client: AsyncWebClient) -> list[Group]:
    # One answer holds every group: Slack does not page usergroups.list.
    answer = await _call(
        "usergroups.list", client.usergroups_list(include_users=True, include_disabled=True)
    )
    return [
        Group(
            g["id"],
            str(g.get("handle") or ""),
            frozenset(g.get("users") or ()),
            disabled=bool(g.get("date_delete")),
        )
        for g in answer.get("usergroups") or ()
        if g.get("id")
    ]


async def _channels(client: AsyncWebClient) -> list[Channel]:
    # Private channels are listed where changebot is a member: the only ones it can post in.
    channels = await _pages(
        "conversations.list",
        "channels",
        lambda cursor: client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=PAGE, cursor=cursor
        ),
    )
    return [Channel(c["id"], str(c.get("name") or "")) for c in channels if c.get("id")]


async def _pages(
    method: str, items: str, page: Callable[[str | None], Awaitable[Any]]
) -> list[dict[str, Any]]:
    """Every item of a cursor-paginated method, following `next_cursor` to the last page."""
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        answer = await _call(method, page(cursor or None))
        found.extend(item for item in answer.get(items) or () if isinstance(item, dict))
        cursor = (answer.get("response_metadata") or {}).get("next_cursor") or ""
        if not cursor:
            return found


async def _call(method: str, call: Awaitable[Any]) -> Any:
    try:
        return await call
    except SlackApiError as error:
        raise SlackRefused(method, str(error.response.get("error"))) from error
    except (aiohttp.ClientError, TimeoutError) as error:
        raise SlackRefused(method, repr(error)) from error


class PolicyNames:
    """The policy as written, and as resolved in this workspace."""

    def __init__(self, written: Policy, client: AsyncWebClient, source: str) -> None:
        self.written = written
        self.client = client
        self.source = source
        self.kinds = kinds_to_read(written)
        self.has_names = any(r.is_name for r in references(written))
        self.current = Resolution(written)

    async def at_start(self) -> tuple[Policy, list[str]]:
        """The policy to serve, and a warning for each kind of change nobody can approve.
        PolicyError names each key whose name (or user group ID) the workspace does not know;
        ConfigError says why Slack could not be asked when names need it."""
        workspace = Workspace()
        if self.kinds:
            try:
                workspace = await read_workspace(self.client, self.kinds)
            except SlackRefused as error:
                if self.has_names:
                    raise ConfigError(
                        f"cannot resolve the policy's @handles and #names: {error}. changebot "
                        "reads them from Slack at start; write IDs instead to start without."
                    ) from error
                log.warning("could not check the policy's user groups in Slack: %s", error)
        self.current = resolve(self.written, workspace, self.source)
        for reference, found in self.current.names:
            log.info("policy %s: %s is %s", reference.key, reference.written, found)
        return self.current.policy, nobody_approves(self.current.policy, workspace)

    async def refresh(self) -> Policy | None:
        """The policy again if a name now stands for another ID, else None. When Slack cannot
        be asked, or a name is no longer known, the last resolution stays, and that is logged."""
        if not self.has_names:
            return None
        try:
            workspace = await read_workspace(self.client, self.kinds)
            resolution = resolve(self.written, workspace, self.source)
        except (SlackRefused, PolicyError) as error:
            log.warning("could not refresh the policy's names (%s); keeping the last ones", error)
            return None
        if resolution.policy == self.current.policy:
            return None
        before = dict((r.key, found) for r, found in self.current.names)
        for reference, found in resolution.names:
            if before.get(reference.key) != found:
                log.info(
                    "policy %s: %s is now %s (was %s)",
                    reference.key,
                    reference.written,
                    found,
                    before.get(reference.key),
                )
        self.current = resolution
        return resolution.policy
