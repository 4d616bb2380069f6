"""How busy this replica is answering Slack, so background work can give way to a burst.

Slack waits 3 seconds for an acknowledgement and an incident brings dozens of clicks at once;
a card update or thread reply shown a second later costs nobody anything (and several updates
of one card coalesce meanwhile). So the publisher waits for a lull before each batch, for at
most `longest` seconds, and then goes ahead whatever the traffic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Traffic:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.in_flight = 0
        self.last_seen = -float("inf")

    def started(self) -> None:
        self.in_flight += 1
        self.last_seen = self.monotonic()

    def finished(self) -> None:
        self.in_flight -= 1
        self.last_seen = self.monotonic()

    def quiet_for(self, seconds: float) -> bool:
        return self.in_flight == 0 and self.monotonic() - self.last_seen >= seconds

    async def lull(self, quiet: float = 0.05, longest: float = 2.0) -> None:
        """Return once no request has been in flight for `quiet` seconds, or after `longest`."""
        deadline = self.monotonic() + longest
        while not self.quiet_for(quiet) and self.monotonic() < deadline:
            await asyncio.sleep(quiet)
