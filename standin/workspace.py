"""The workspace the stand-in pretends to be: its team, bot, people, channels and user groups.

Real Slack answers from a workspace's directory; the stand-in answers from this model, so a test
can say "the bot is not in #random" and see `not_in_channel` exactly as it would in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo


@dataclass
class User:
    """A person (or the bot) in the workspace, as users.info describes them."""

    id: str
    name: str
    real_name: str = ""
    email: str = ""
    #: The name people see and @-mention; Slack's default is empty (then the username shows).
    display_name: str = ""
    #: The person's time zone (an IANA name); None for one Slack does not say.
    tz: str | None = "Europe/London"
    is_bot: bool = False
    deleted: bool = False

    def to_api(self, team_id: str) -> dict[str, Any]:
        real_name = self.real_name or self.name
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            **self._time_zone(),
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {
                "real_name": real_name,
                "display_name": self.display_name or self.name,
                "email": self.email,
                "team": team_id,
            },
        }

    def _time_zone(self) -> dict[str, Any]:
        """`tz`, `tz_label` and `tz_offset` (seconds east of UTC, now) as Slack gives them."""
        if self.tz is None:
            return {}
        now = datetime.now(UTC).astimezone(ZoneInfo(self.tz))
        offset = now.utcoffset()
        return {
            "tz": self.tz,
            "tz_label": now.tzname() or self.tz,
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
        }


@dataclass
class Channel:
    """A conversation: public or private channel, or the bot's DM with one user."""

    id: str
    name: str
    private: bool = False
    members: list[str] = field(default_factory=list)
    archived: bool = False
    dm_user: str | None = None

    @property
    def is_dm(self) -> bool:
        return self.dm_user is not None

    def to_api(self, bot_user_id: str) -> dict[str, Any]:
        if self.dm_user is not None:
            return {"id": self.id, "is_im": True, "user": self.dm_user, "is_open": True}
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.private,
            "is_group": self.private,
            "is_im": False,
            "is_private": self.private,
            "is_archived": self.archived,
            "is_member": bot_user_id in self.members,
            "num_members": len(self.members),
        }


@dataclass
class UserGroup:
    """A user group: its @handle, its members, and whether an admin has disabled it."""

    id: str
    handle: str
    name: str = ""
    members: list[str] = field(default_factory=list)
    disabled: bool = False

    def to_api(self, team_id: str, *, with_users: bool) -> dict[str, Any]:
        """As usergroups.list describes it (`users` only when asked for)."""
        body: dict[str, Any] = {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "name": self.name or self.handle,
            "description": "",
            "handle": self.handle,
            "is_external": False,
            "date_create": 1446598059,
            "date_update": 1446670362,
            "date_delete": 1446670362 if self.disabled else 0,
            "auto_type": None,
            "created_by": "U0BOT",
            "updated_by": "U0BOT",
            "deleted_by": "U0BOT" if self.disabled else None,
            "prefs": {"channels": [], "groups": []},
            "user_count": len(self.members),
        }
        if with_users:
            body["users"] = list(self.members)
        return body


@dataclass
class Workspace:
    """Team, bot identity, users, channels and user groups; mutable between test steps."""

    team_id: str = "T0TEAM"
    team_domain: str = "changebot-test"
    team_name: str = "Changebot Test"
    app_id: str = "A0APP"
    bot_id: str = "B0BOT"
    bot_user_id: str = "U0BOT"
    bot_name: str = "changebot"
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    usergroups: dict[str, UserGroup] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bot_user_id not in self.users:
            self.users[self.bot_user_id] = User(self.bot_user_id, self.bot_name, is_bot=True)

    @classmethod
    def sample(cls) -> Workspace:
        """Three people, a channel the bot is in, one it is not, and a private one it can't see."""
        ws = cls()
        for user_id, name in (("U0ALICE", "alice"), ("U0BOB", "bob"), ("U0CAROL", "carol")):
            ws.add_user(user_id, name, email=f"{name}@example.com")
        people = ["U0ALICE", "U0BOB", "U0CAROL"]
        ws.add_channel("C0CHANGES", "changes", members=people)
        ws.add_channel("C0RANDOM", "random", members=people, bot=False)
        ws.add_channel("G0SECRET", "secret", private=True, members=["U0ALICE"], bot=False)
        return ws

    def add_user(self, user_id: str, name: str, **details: Any) -> User:
        user = User(user_id, name, **details)
        self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        private: bool = False,
        members: list[str] | None = None,
        bot: bool = True,
        archived: bool = False,
    ) -> Channel:
        people = list(members or [])
        if bot:
            people.append(self.bot_user_id)
        channel = Channel(channel_id, name, private=private, members=people, archived=archived)
        self.channels[channel_id] = channel
        return channel

    def set_usergroup(
        self, group_id: str, members: list[str], *, handle: str = "", disabled: bool = False
    ) -> UserGroup:
        """A user group with these members (its handle, unless given, is its ID in lower case);
        an existing group keeps its handle unless a new one is given."""
        old = self.usergroups.get(group_id)
        handle = handle or (old.handle if old else group_id.lower())
        group = UserGroup(group_id, handle, members=list(members), disabled=disabled)
        self.usergroups[group_id] = group
        return group

    def user(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def user_name(self, user_id: str) -> str:
        user = self.users.get(user_id)
        return user.name if user else user_id.lower()

    def find_channel(self, ref: str) -> Channel | None:
        """By id, or by name with or without '#', as chat.postMessage accepts both."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name and not c.is_dm), None)

    def dm_with(self, user_id: str) -> Channel:
        """The bot's DM with a user, created on first use as Slack does."""
        for channel in self.channels.values():
            if channel.dm_user == user_id:
                return channel
        channel_id = "D" + user_id.removeprefix("U").removeprefix("W").rjust(8, "0")
        channel = Channel(
            channel_id, user_id, private=True, members=[user_id, self.bot_user_id], dm_user=user_id
        )
        self.channels[channel_id] = channel
        return channel

    def bot_sees(self, channel: Channel) -> bool:
        """Private channels the bot is not in are invisible to it: Slack says channel_not_found."""
        return not channel.private or self.bot_user_id in channel.members

    def channel_name(self, channel_id: str) -> str:
        channel = self.channels.get(channel_id)
        if channel is None:
            return channel_id
        return "directmessage" if channel.is_dm else channel.name
