"""Failure injection: the ways Slack's Web API lets a bot down in production.

Rate limits (HTTP 429 with Retry-After), server errors (HTTP 500/503), slow answers that outlast
the client's timeout, connections cut after the work was done but before the answer, and
method errors (HTTP 200 with ok=false) can be scheduled for the next
call to a method, sprinkled at random with a seed, or removed again with `heal()`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# Shorthands accepted wherever a fault kind is named.
KINDS: dict[str, tuple[str, int]] = {
    "ratelimited": ("ratelimited", 429),
    "500": ("internal_error", 500),
    "503": ("service_unavailable", 503),
    "timeout": ("timeout", 200),
    "dropped": ("dropped", 200),
}


@dataclass(frozen=True)
class Fault:
    """How one call goes wrong: a Slack error code and the HTTP status it comes with."""

    error: str
    status: int
    retry_after: int | None = None
    #: Only a call with these parameters (a channel, say) meets this fault; others pass it by.
    where: Mapping[str, str] = field(default_factory=dict)

    def meets(self, params: Mapping[str, Any]) -> bool:
        """Whether the call's parameters are as `where` says ("*": given, whatever it is)."""
        return all(
            bool(params.get(k)) if v == "*" else str(params.get(k, "")) == v
            for k, v in self.where.items()
        )

    @property
    def is_timeout(self) -> bool:
        """The call succeeds, but its answer arrives after the client has given up."""
        return self.error == "timeout"

    @property
    def is_dropped(self) -> bool:
        """The call succeeds, but the connection is cut before its answer is sent."""
        return self.error == "dropped"


def make_fault(error: str, status: int | None = None, retry_after: int = 1) -> Fault:
    code, default_status = KINDS.get(error, (error, 200))
    http_status = default_status if status is None else status
    return Fault(code, http_status, retry_after if http_status == 429 else None)


class FaultPlan:
    """Which calls fail and how; safe to change from a test thread while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, list[Fault]] = {}
        self._rate = 0.0
        self._kinds: list[Fault] = []
        self._methods: set[str] | None = None
        self._rng = random.Random()
        self.delay = 0.0

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        status: int | None = None,
        retry_after: int = 1,
        times: int = 1,
        where: Mapping[str, str] | None = None,
    ) -> None:
        """The next `times` calls to `method` ("*" for any) fail this way, in order; with
        `where`, the next calls whose parameters say so ({"channel": "U0ALICE"}; "*" for any
        value, as {"thread_ts": "*"} for a reply in a thread)."""
        fault = replace(make_fault(error, status, retry_after), where=dict(where or {}))
        with self._lock:
            self._next.setdefault(method, []).extend([fault] * times)

    def fail_rate(
        self,
        rate: float,
        kinds: Iterable[str] = ("500", "timeout", "ratelimited"),
        seed: int | None = None,
        methods: Iterable[str] | None = None,
        retry_after: int = 1,
    ) -> None:
        """Each call (to `methods`, default all) fails with probability `rate`, kind at random."""
        with self._lock:
            self._rate = rate
            self._kinds = [make_fault(kind, retry_after=retry_after) for kind in kinds]
            self._methods = set(methods) if methods is not None else None
            self._rng = random.Random(seed)

    def heal(self) -> None:
        """No more failures or delays: Slack is healthy again."""
        with self._lock:
            self._next.clear()
            self._rate = 0.0
            self.delay = 0.0

    def delay_all(self, seconds: float) -> None:
        """Every Web API answer is delayed by `seconds` (for latency benchmarks)."""
        self.delay = seconds

    def pick(self, method: str, params: Mapping[str, Any] | None = None) -> Fault | None:
        """The fault for this call, if any; scheduled faults come before random ones."""
        with self._lock:
            for key in (method, "*"):
                queue = self._next.get(key) or []
                for index, fault in enumerate(queue):
                    if fault.meets(params or {}):
                        return queue.pop(index)
            applies = self._methods is None or method in self._methods
            if applies and self._kinds and self._rng.random() < self._rate:
                return self._rng.choice(self._kinds)
        return None
