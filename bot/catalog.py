"""The Standard change catalog in force, as this replica last read it: the policy file's
procedures with the proposals adopted in Slack applied. Every replica asks the database how
many proposals were ever adopted before it uses the catalog (one small count), and reads
them again only when that number moved: an approval on one replica is in the next form on
every other."""

from __future__ import annotations

import threading

from sqlalchemy import Engine
from sqlmodel import Session

from storage import proposals as stored
from storage.proposals import SqlProposals, adopted_count
from workflows.catalog import Proposal, catalog_in_force
from workflows.policy import Policy


class LiveCatalog:
    def __init__(self, policy: Policy) -> None:
        #: The policy as its file says: the starting catalog.
        self.base = policy
        self.policy = policy
        self._seen = 0
        self._lock = threading.Lock()

    def refresh(self, session: Session) -> Policy:
        """The policy with the catalog in force now."""
        count = adopted_count(session)
        if count == self._seen:
            return self.policy
        adopted = SqlProposals(session).adopted()
        policy = self.base.with_catalog(catalog_in_force(self.base.catalog, adopted))
        with self._lock:
            self.policy, self._seen = policy, count
        return policy


# -- what the proposal listeners ask (through `services.query`) -------------------------------


def proposal(session: Session, number: int) -> Proposal:
    return SqlProposals(session).get(number)


def proven(session: Session) -> list[tuple[int, str]]:
    """The changes a proposal may cite (closed, successful), newest first."""
    return stored.proven_changes(session)


def thread_of(session: Session, number: int) -> tuple[str, str]:
    return stored.thread_of(session, number)


def record_thread(engine: Engine, number: int, channel: str, ts: str) -> None:
    """Where the proposal's card was posted: its decisions are said in that thread."""
    with Session(engine) as session:
        stored.set_thread(session, number, channel, ts)
