"""`changebot audit keygen|digest` and what `audit verify --digests` adds: signed digests of
the audit trail, kept outside the database, against which a rewritten trail shows."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from bot import signing
from bot.digester import Signer, digest_now
from bot.leased import replica_id
from bot.settings import Settings
from storage import digests as store
from storage.repositories import read_head, read_trail
from storage.uow import read_session
from workflows.audit import ChainBreak, ChainedEntry, verify
from workflows.digests import Comparison, DigestMalformed, Named, check_digests, said
from workflows.ports import SystemClock


def add_commands(audit: Any) -> None:
    keygen = audit.add_parser(
        "keygen",
        help="make the Ed25519 key pair that signs digests",
        description="Make an Ed25519 key pair for signed digests. Keep the private key where "
        "changebot runs (CHANGEBOT_DIGEST_KEY); give the public key to your auditors. "
        "Existing files are never overwritten.",
    )
    keygen.add_argument("--private-key", required=True, metavar="PATH", help="written 0600")
    keygen.add_argument("--public-key", required=True, metavar="PATH", help="for auditors")
    keygen.set_defaults(run=_keygen)

    digest = audit.add_parser(
        "digest",
        help="write a signed digest of the trail now",
        description="Sign what the audit trail is now and write it to CHANGEBOT_DIGEST_DIR, "
        "with the key at CHANGEBOT_DIGEST_KEY. `changebot serve` does this on a schedule.",
    )
    digest.set_defaults(run=_digest)


def add_verify_options(verify: argparse.ArgumentParser) -> None:
    verify.add_argument(
        "--digests", metavar="DIR", help="also check the trail against the signed digests here"
    )
    verify.add_argument(
        "--public-key", metavar="FILE", help="the public key that signed them (with --digests)"
    )


@dataclass(frozen=True)
class Walked:
    """The hash chain walked from its first event: how many were checked, the first break
    (None: intact) and the head the chain must end at."""

    count: int
    broken: ChainBreak | None
    head: tuple[int, str] | None

    @property
    def ending(self) -> str:
        """`, ending at #n (hash)` when the trail has events; empty when it has none."""
        head = self.head
        return f", ending at #{head[0]} ({head[1][:12]})" if head and head[0] else ""


def walk_trail(engine: Engine, digests: DigestCheck | None = None) -> Walked:
    """Walk the whole chain as `audit verify` does, compared with the signed digests in the
    same pass when they are given (`--digests`; their findings are then on `digests`)."""
    with read_session(engine) as session:
        head = read_head(session)
        events = read_trail(session)
        count, broken = verify(digests.tap(events) if digests else events, head)
    return Walked(count, broken, head)


def digest_check(args: argparse.Namespace) -> DigestCheck | None:
    """The check `--digests DIR --public-key FILE` asks for (add_verify_options), None without
    them; Stop when only one of the two is given."""
    from bot.cli import Stop

    if bool(args.digests) != bool(args.public_key):
        raise Stop("--digests and --public-key go together: the digests and the key that signed.")
    return DigestCheck(Path(args.digests), Path(args.public_key)) if args.digests else None


def _keygen(args: argparse.Namespace, settings: Settings) -> int:
    fingerprint = signing.generate(Path(args.private_key), Path(args.public_key))
    print(f"Wrote the private key {args.private_key} (readable by you alone) and the public key")
    print(f"{args.public_key}, fingerprint {fingerprint}.")
    print("Set CHANGEBOT_DIGEST_KEY to the private key's path; give the public key to auditors.")
    return 0


def _digest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli import Stop, open_database

    if not settings.digests_enabled:
        raise Stop(
            "set CHANGEBOT_DIGEST_DIR and CHANGEBOT_DIGEST_KEY to write digests; see the "
            "README's 'Signed digests'."
        )
    signer = Signer.from_settings(settings)
    engine = open_database(settings)
    path = digest_now(engine, signer, SystemClock(), replica_id())
    digest = store.read_digest(path.parent, path.name)
    print(
        f"Wrote {path}: {digest.events} events, ending at #{digest.seq} ({digest.hash[:12]}), "
        f"signed by {digest.key}."
    )
    return 0


class DigestCheck:
    """`audit verify --digests`: the directory read and checked before the trail is read, then
    the trail compared with it as the chain is walked, in one pass."""

    def __init__(self, directory: Path, public_key: Path) -> None:
        public = signing.load_public(public_key)
        self.public_key = public_key
        self.fingerprint = signing.fingerprint(public)
        self.directory = directory
        self.problems: list[str] = []
        names = store.digest_names(directory)
        if not names:
            self.problems.append(
                f"{directory} holds no digests: there is nothing to check the trail against."
            )
        self.trusted, found = check_digests(
            self._read(names), self.fingerprint, lambda d: signing.genuine(public, d)
        )
        self.problems.extend(found)
        self.comparison = Comparison(self.trusted)

    def _read(self, names: Iterable[str]) -> Iterator[Named]:
        for name in names:
            try:
                yield Named(name, store.read_digest(self.directory, name))
            except DigestMalformed as error:
                self.problems.append(f"{name} is not a digest: {error}.")

    def tap(self, events: Iterable[ChainedEntry]) -> Iterator[ChainedEntry]:
        return self.comparison.tap(events)

    def outcome(self, *, complete: bool) -> tuple[list[str], list[str]]:
        """What the digests show, once the trail went through `tap`: the sentences of what
        they bear out, and the problems (none when all is well)."""
        problems = [*self.problems, *self.comparison.findings(complete=complete)]
        said_: list[str] = []
        if self.trusted:
            first, last = self.trusted[0].digest, self.trusted[-1].digest
            said_.append(
                f"Digests: {len(self.trusted)} signed by {self.fingerprint}, from {said(first.at)} "
                f"to {said(last.at)} (the latest signed #{last.seq})."
            )
            if not problems and complete:
                said_.append(f"Every event up to #{last.seq} is as the digests signed it.")
            elif not problems:
                # The walk stops at the chain's first break: what lies beyond was not compared.
                said_.append(
                    "The events read before the chain broke are as the digests signed them; "
                    "those from the break on were not compared."
                )
        return said_, problems

    def report(self, *, complete: bool) -> bool:
        """Say what the digests show; True when they show nothing wrong."""
        borne_out, problems = self.outcome(complete=complete)
        for sentence in borne_out:
            print(sentence)
        if problems:
            for problem in problems:
                print(problem, file=sys.stderr)
            print(
                f"Digests do NOT bear the trail out: {len(problems)} problem(s).", file=sys.stderr
            )
            return False
        return True
