"""What the listeners need, built once by the composition root and reached through Bolt's
context: the database, the policy, the clock, the approver directory, the publisher and how
busy the replica is."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from bot import queries
from bot.catalog import LiveCatalog
from bot.directory import Directory
from bot.settings import Settings
from bot.traffic import Traffic
from storage.uow import SqlUnitOfWork, read_session
from workflows.errors import StaleChange
from workflows.metrics import Dora, last_days
from workflows.model import Actor, Change, Window
from workflows.policy import Policy
from workflows.ports import Clock, UnitOfWork
from workflows.standing import Standing, standings

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: How often a use case is retried when another replica saved the same change first.
CONFLICT_RETRIES = 8
#: What PostgreSQL ends a transaction with so that another may go on (SQLSTATE): a deadlock,
#: and a serialization failure. Nothing of it was written; done again, it goes through.
GIVEN_UP_FOR_ANOTHER = frozenset({"40P01", "40001"})


def given_up_for_another(error: DBAPIError) -> bool:
    """Whether the database ended the transaction for another's sake (to be run again)."""
    return getattr(error.orig, "sqlstate", None) in GIVEN_UP_FOR_ANOTHER


@dataclass
class Services:
    settings: Settings
    engine: Engine
    policy: Policy
    clock: Clock
    directory: Directory
    #: The app's Web API client, for work done after a request is answered: Bolt's client
    #: of the request is made for it alone, and keeping it means keeping a dozen objects.
    client: AsyncWebClient
    kick: Callable[[], None] = field(default=lambda: None)
    #: A link to a message (channel, ts), once the workspace's address is known, else "".
    permalink: Callable[[str, str], str] = field(default=lambda channel, ts: "")
    traffic: Traffic = field(default_factory=Traffic)
    #: The Standard change catalog in force (the file's and the procedures adopted in Slack):
    #: `policy` is brought up to date with it before each use case and request form.
    live: LiveCatalog | None = None
    #: DORA's metrics of the last days, as last measured: the same for every reader, so App
    #: Home measures them once a minute at most, not once a visit.
    _recent: tuple[Window, Dora] | None = field(default=None, repr=False)

    def read(self) -> Any:
        return read_session(self.engine)

    async def run(
        self,
        use_case: Callable[Concatenate[UnitOfWork, Clock, Policy, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run a use case in a worker thread, in its own transaction.

        A compare-and-set conflict means another click on another replica won the race: the
        use case runs again on the fresh state, so both are counted (or the second refused by
        the rules, never silently lost). So does a transaction PostgreSQL ended to break a
        deadlock (`given_up_for_another`). Afterwards the publisher is told there is news.
        """
        return await self.run_as_seen(None, use_case, *args, **kwargs)

    async def run_as_seen(
        self,
        seen: tuple[int, str] | None,
        use_case: Callable[Concatenate[UnitOfWork, Clock, Policy, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`run`, for a step a person took on a change as shown to them: `seen` is its number
        and `seen_digest` then (ids.Target); refused (EditedSince) in the step's own
        transaction if the change says something else by then. None: nothing to compare."""

        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            policy = self._policy_in_force()
            uow = SqlUnitOfWork(self.engine, seen=seen)
            return use_case(uow, self.clock, policy, *args, **kwargs)

        for attempt in range(CONFLICT_RETRIES):
            try:
                result = await asyncio.to_thread(call, *args, **kwargs)
                break
            except StaleChange:
                log.info("retrying %s after a concurrent update", use_case.__name__)
                await asyncio.sleep(0.005 * (attempt + 1))
            except DBAPIError as error:
                if not given_up_for_another(error):
                    raise
                log.warning("retrying %s: %s", use_case.__name__, error.orig)
                await asyncio.sleep(0.005 * (attempt + 1))
        else:  # the last try: a conflict now reaches the person as a stale click
            result = await asyncio.to_thread(call, *args, **kwargs)
        self.kick()
        _log_state_change(use_case.__name__, result, (*args, *kwargs.values()))
        return result

    async def current_policy(self) -> Policy:
        """The policy with the catalog in force now (for a form that offers the catalog)."""
        return await asyncio.to_thread(self._policy_in_force)

    def _policy_in_force(self) -> Policy:
        if self.live is not None:
            with self.read() as session:
                self.policy = self.live.refresh(session)
        return self.policy

    async def query(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read in a worker thread with a read-only session."""

        def go() -> T:
            with self.read() as session:
                return fn(session, *args, **kwargs)

        return await asyncio.to_thread(go)

    async def recent_metrics(self, days: int) -> Dora:
        """DORA's metrics of the last `days` days (up to the current minute)."""
        period = last_days(days, self.clock.now())
        if self._recent is None or self._recent[0] != period:
            self._recent = (period, await self.query(queries.deployments, period))
        return self._recent[1]

    async def standings(self, *lists: Sequence[Change]) -> list[list[Standing]]:
        """Lists of changes as they stand now, with the overlaps of those that have any
        (they show on each line, and may ask for one more approval): read in one session,
        each change once however many lists it is on."""
        each = {change.number: change for changes in lists for change in changes}
        conflicts = await self.query(queries.conflicts_of, each.values()) if each else {}
        now = self.clock.now()
        return [standings(changes, self.policy, now, conflicts) for changes in lists]


def _log_state_change(name: str, result: object, args: tuple[object, ...]) -> None:
    """One line per state change: the use case, the change it touched and who acted."""
    ref = getattr(result, "ref", None)
    actor = next((a.user_id for a in args if isinstance(a, Actor)), "-")
    where = f" {ref}" if isinstance(ref, str) else ""
    log.info("%s%s by %s", name, where, actor, extra={"ref": ref if isinstance(ref, str) else None})
