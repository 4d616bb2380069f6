"""A local stand-in for Slack, for tests: its Web API and Socket Mode.

- `SlackStandIn` (webapi): the Web API server and workspace state; `StandInThread` runs it in a
  background thread for synchronous tests.
- `Workspace` (workspace): the team, users, channels and user groups the stand-in serves.
"""

from standin.records import Call
from standin.webapi import SlackStandIn, StandInThread
from standin.workspace import Channel, User, Workspace

__all__ = ["Call", "Channel", "SlackStandIn", "StandInThread", "User", "Workspace"]
