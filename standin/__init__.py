"""A local stand-in for Slack, for tests: its Web API, Socket Mode, and the people using it.

- `SlackStandIn` (webapi): the Web API server and workspace state; `StandInThread` runs it in a
  background thread for synchronous tests.
- `SlackDriver` (driver): sends the bot what Slack sends when people use it, signed.
- `Workspace` (workspace): the team, users, channels and user groups the stand-in serves.
"""

from standin.driver import DriverError, SlackDriver
from standin.inputs import InputError
from standin.records import Call
from standin.signing import sign, signed_headers
from standin.sync import SyncSlackDriver
from standin.transport import Reply
from standin.webapi import SlackStandIn, StandInThread
from standin.workspace import Channel, User, UserGroup, Workspace

__all__ = [
    "Call",
    "Channel",
    "DriverError",
    "InputError",
    "Reply",
    "SlackDriver",
    "SlackStandIn",
    "StandInThread",
    "SyncSlackDriver",
    "User",
    "UserGroup",
    "Workspace",
    "sign",
    "signed_headers",
]
