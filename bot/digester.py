"""Writes the audit trail's signed digests: on the timer, exactly once across replicas, and on
demand (`changebot audit digest`).

A replica claims the digest schedule under a lease (storage/digests.py), reads the trail's
head and the latest digest in the directory, signs a digest naming that one's signature,
writes it, and moves the schedule on — while the lease is still its own. A digest is written
every interval whether or not anything happened, so that one missing shows as a gap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session

from bot import signing
from bot.leased import LEASE, LeasedWorker
from bot.settings import Settings
from storage import digests as store
from storage.digests import DirectoryProblem, Turn
from workflows.digests import Digest, next_due
from workflows.ports import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signer:
    """What writing digests needs: the directory, the private key, the interval."""

    directory: Path
    key: Ed25519PrivateKey
    every: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer:
        """From CHANGEBOT_DIGEST_DIR and CHANGEBOT_DIGEST_KEY, checked: KeyProblem or
        DirectoryProblem naming what is wrong."""
        settings.check_digests()
        key = signing.load_private(Path(settings.digest_key_path), source="CHANGEBOT_DIGEST_KEY")
        directory = Path(settings.digest_dir)
        store.digest_names(directory)  # readable, or it says so now rather than at the hour
        return cls(directory, key, settings.digest_every)

    @property
    def fingerprint(self) -> str:
        return signing.fingerprint(self.key.public_key())


def write_turn(
    session: Session, signer: Signer, turn: Turn, clock: Clock, lease: timedelta, *, due: bool
) -> Path | None:
    """Write the digest `turn` holds the lease for; with `due`, move the schedule on to the
    next interval. None when the lease was too far gone to write safely (tried again at the
    next tick). The lease is handed back whatever happens."""
    written = None
    try:
        before = store.latest(signer.directory)
        now = clock.now()
        since = before.digest.seq if before is not None else 0
        trail = store.snapshot(session, since)
        digest = Digest(
            at=now,
            seq=trail.seq,
            hash=trail.hash,
            events=trail.events,
            since=trail.since,
            marks=trail.marks,
            previous=before.digest.signature if before is not None else None,
            key=signer.fingerprint,
            every=int(signer.every.total_seconds()),
            scheduled=due,
        )
        # Never write late in the lease: another replica may take it over once it runs out,
        # and write this interval's digest again.
        if clock.now() < turn.claimed_at + lease / 4:
            written = store.write(signer.directory, signing.sign(signer.key, digest))
    finally:
        next_at = next_due(clock.now(), signer.every) if due and written else None
        if not store.finish(session, turn.owner, next_at):
            log.warning("lost the lease on the digest schedule while writing a digest")
    return written


class Busy(Exception):
    """Another replica holds the lease on the digest schedule: it is writing one right now."""

    code = 1


def digest_now(engine: Engine, signer: Signer, clock: Clock, owner: str) -> Path:
    """Write a digest now, due or not (`changebot audit digest`); the schedule stays as it is."""
    with Session(engine) as session:
        turn = store.claim_now(session, owner, clock.now(), LEASE)
        if turn is None:
            raise Busy(
                f"another replica ({store.holder(session) or 'unknown'}) is writing a digest "
                "right now; try again in a minute."
            )
        written = write_turn(session, signer, turn, clock, LEASE, due=False)
    if written is None:
        raise Busy("writing the digest took too long to finish safely; try again.")
    return written


class Digester(LeasedWorker[Turn]):
    """Writes the digest when it is due; the scheduler's timer calls `sweep`."""

    doing = "writing the audit trail's digest"
    batch = 1

    def __init__(
        self,
        engine: Engine,
        signer: Signer,
        clock: Clock,
        *,
        owner: str | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        super().__init__(store, engine, clock, owner=owner, lease=lease)
        self.signer = signer

    async def handle(self, work: Turn) -> None:
        try:
            path = await self.in_session(
                write_turn, self.signer, work, self.clock, self.lease, due=True
            )
        except DirectoryProblem as error:
            log.error("no digest written: %s", error)
            return
        if path is not None:
            log.info("wrote the audit trail's digest %s", path)

    async def tick(self) -> None:
        """The timer's call: the timer must outlive any one bad sweep."""
        try:
            await self.sweep()
        except Exception:
            log.exception("the digest sweep failed; trying again at the next tick")
