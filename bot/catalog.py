"""The Standard change catalog in force, as this replica last read it: the policy file's
procedures with the proposals adopted in Slack applied. Every replica asks the database how
many proposals were ever adopted before it uses the catalog (one small count), and reads
them again only when that number moved: an approval on one replica is in the next form on
every other."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from storage import driver
from storage import proposals as stored
from storage.proposals import SqlProposals, adopted_count
from workflows.catalog import Proposal, catalog_in_force
from workflows.policy import Policy

#: A proposal's card is posted right after its form; the sweep posts it only when that
#: has not happened this long after.
UNPOSTED_GRACE = timedelta(seconds=30)


class LiveCatalog:
    def __init__(self, policy: Policy) -> None:
        #: The policy as its file says: the starting catalog.
        self.base = policy
        self.policy = policy
        self._seen = 0
        self._lock = threading.Lock()

    def use(self, policy: Policy) -> None:
        """The policy file as now resolved (its @handles and #names): the catalog in force is
        made on it from now on, read again at the next refresh."""
        with self._lock:
            self.base, self.policy, self._seen = policy, policy, -1

    def refresh(self, session: Session, counted: driver.Statement | None = None) -> Policy:
        """The policy with the catalog in force now; how many proposals were adopted is
        read now, or was read by `counted` (storage.proposals.counting_adopted)."""
        count = adopted_count(session, counted)
        if count == self._seen:
            return self.policy
        adopted = SqlProposals(session).adopted()
        base = self.base
        policy = base.with_catalog(catalog_in_force(base.catalog, adopted))
        with self._lock:
            if self.base is base:  # else the names were resolved anew meanwhile: next time
                self.policy, self._seen = policy, count
        return policy


# -- what the proposal listeners ask (through `services.query`) -------------------------------


def proposal(session: Session, number: int) -> Proposal:
    return SqlProposals(session).get(number)


def proven(session: Session, matching: str = "") -> list[tuple[int, str]]:
    """The changes a proposal may cite (closed, successful), newest first; those `matching`
    what was typed in the form's menu (words of the title, or a CHG number)."""
    return stored.proven_changes(session, matching=matching)


def any_proven(session: Session) -> bool:
    return bool(stored.proven_changes(session, limit=1))


def thread_of(session: Session, number: int) -> tuple[str, str]:
    return stored.thread_of(session, number)


def claim_posting(engine: Engine, number: int, now: datetime, origin: str) -> str | None:
    """This replica posts the proposal's card (where it was proposed, returned), or None."""
    with Session(engine) as session:
        return stored.claim_posting(session, number, now, origin)


def release_posting(engine: Engine, number: int) -> None:
    with Session(engine) as session:
        stored.release_posting(session, number)


def unposted(session: Session, now: datetime) -> list[int]:
    """Undecided proposals whose card is not in Slack (see storage.proposals.unposted)."""
    return stored.unposted(session, now, UNPOSTED_GRACE)


def record_thread(engine: Engine, number: int, channel: str, ts: str) -> None:
    """Where the proposal's card was posted: its decisions are said in that thread."""
    with Session(engine) as session:
        stored.set_thread(session, number, channel, ts)
