"""The Standard change catalog in force, as this replica last read it: the policy file's
procedures with the proposals adopted in Slack applied. Every replica asks the database how
many proposals were ever adopted before it uses the catalog (one small count), and reads
them again only when that number moved: an approval on one replica is in the next form on
every other."""

from __future__ import annotations

import threading

from sqlmodel import Session

from storage.proposals import SqlProposals, adopted_count
from workflows.catalog import catalog_in_force
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
