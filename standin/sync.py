"""Blocking versions of the driver's actions, for synchronous tests.

Each call runs on a private event loop, so the stand-in must run elsewhere: in a StandInThread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from standin.driver import SlackDriver, Surface
from standin.transport import Reply


class SyncSlackDriver:
    """Wraps a SlackDriver; same methods, without `await`."""

    def __init__(self, driver: SlackDriver) -> None:
        self.driver = driver

    def slash_command(
        self, user: str, command: str, text: str = "", channel: str | None = None
    ) -> Reply:
        return asyncio.run(self.driver.slash_command(user, command, text, channel))

    def click(self, user: str, where: Surface | None, action_id: str, value: Any = None) -> Reply:
        return asyncio.run(self.driver.click(user, where, action_id, value))

    def submit_modal(
        self, user: str, values: Mapping[str, Any] | None = None, *, view: Surface | None = None
    ) -> Reply:
        return asyncio.run(self.driver.submit_modal(user, values, view=view))

    def close_modal(self, user: str) -> Reply | None:
        return asyncio.run(self.driver.close_modal(user))

    def send_event(self, event: dict[str, Any], **options: Any) -> Reply:
        return asyncio.run(self.driver.send_event(event, **options))

    def open_home(self, user: str) -> Reply:
        return asyncio.run(self.driver.open_home(user))

    def open_modal_for(self, user: str) -> Surface | None:
        return self.driver.open_modal_for(user)
