"""Machine identities: the API tokens pipelines use, each with the least it needs, and the
tokens of calendar feeds.

A token has a name (which pipeline, for the audit trail), scopes (what it may do) and a
secret shown once when it is made; only a hash of the secret is kept. Which scope each thing
a pipeline does needs is decided here, once, and asked by the HTTP adapter.

A calendar feed's token travels in its URL, which is pasted into calendar apps, shared and
synced to phones: it leaks easily. So the `calendar` scope stands alone: such a token reads
the feed and nothing else, and no pipeline's token reads the feed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from workflows.errors import ValidationFailed
from workflows.events import Happened
from workflows.model import GITHUB_PIPELINE

#: The audit trail's ref for what happens to tokens.
TOKENS_REF = "TOKENS"
CREATED = Happened.TOKEN_CREATED
REVOKED = Happened.TOKEN_REVOKED

#: Names no token may take: the gate records GitHub's own decisions under this one.
RESERVED_NAMES = frozenset({GITHUB_PIPELINE})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,29}$")


class Scope(StrEnum):
    """What a token may do."""

    GATE = "gate"  # ask the deploy gate
    DEPLOYMENTS = "deployments"  # report deployments and their outcomes
    CALENDAR = "calendar"  # read the calendar feed (/calendar.ics), and nothing else

    @property
    def allows(self) -> str:
        return _ALLOWS[self]


_ALLOWS = {
    Scope.GATE: "ask the deploy gate",
    Scope.DEPLOYMENTS: "report deployments",
    Scope.CALENDAR: "read the calendar feed",
}

#: Scopes that stand alone on a token: its secret is in a URL people paste around.
ALONE = frozenset({Scope.CALENDAR})


@dataclass(frozen=True)
class ApiToken:
    """A token as stored: never its secret."""

    name: str
    scopes: frozenset[Scope]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str = ""

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes


def check_name(name: str) -> str:
    text = name.strip()
    if not _NAME.match(text):
        raise ValidationFailed(
            "name",
            "a token's name is up to 30 lowercase letters, digits and . _ - (the pipeline's "
            "name, say: ci-prod), starting with a letter or digit.",
        )
    if text in RESERVED_NAMES:
        raise ValidationFailed("name", f"{text!r} is reserved; choose another name.")
    return text


def parse_scopes(text: str) -> frozenset[Scope]:
    """`gate,deployments` -> both scopes; anything unknown is refused, naming the choices."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = {s.value for s in Scope}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        choices = ", ".join(f"{s.value} ({s.allows})" for s in Scope)
        what = f"unknown scope {unknown[0]!r}" if unknown else "give at least one scope"
        raise ValidationFailed("scopes", f"{what}; choose from {choices}.")
    return check_scopes(frozenset(Scope(n) for n in names))


def check_scopes(scopes: frozenset[Scope]) -> frozenset[Scope]:
    """A token's scopes as they may be granted together: a calendar feed's token, whose secret
    sits in a URL, may do nothing else."""
    if not scopes:
        raise ValidationFailed("scopes", "give at least one scope.")
    for alone in sorted(ALONE & scopes):
        if len(scopes) > 1:
            others = ", ".join(sorted(s.value for s in scopes - {alone}))
            raise ValidationFailed(
                "scopes",
                f"the {alone.value!r} scope cannot be combined with {others}: a calendar feed's "
                "URL is pasted into calendar apps and leaks easily, so its token may only "
                f"{alone.allows}. Make one token with --scopes {alone.value} and another for "
                "the pipeline.",
            )
    return scopes


def hash_secret(secret: str) -> str:
    """What is stored of a token: its SHA-256. The secret has 256 random bits, so a fast hash
    is enough; no salt or stretching is needed as it would be for a password."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def refusal(token: ApiToken | None, scope: Scope) -> tuple[int, str] | None:
    """None if `token` may do what `scope` allows; else the HTTP status and a sentence."""
    if token is None or not token.is_active:
        return 401, "Unknown or revoked API token: create one with `changebot token create`."
    if not token.may(scope):
        if token.scopes & ALONE:
            return (
                403,
                f"The token {token.name!r} is a calendar feed's token: it may only read "
                f"/calendar.ics, not {scope.allows}. Create a token with --scopes {scope.value}.",
            )
        have = ", ".join(sorted(s.value for s in token.scopes))
        return (
            403,
            f"The token {token.name!r} may not {scope.allows}: it needs the {scope.value!r} "
            f"scope (it has {have}). Create a token with --scopes {scope.value}.",
        )
    return None


def reads_feed(token: ApiToken | None) -> bool:
    """Whether `token` opens the calendar feed: an active token with the `calendar` scope.
    Anything else is told only that there is no such page, so a guessed or revoked URL
    learns nothing."""
    return token is not None and token.is_active and token.may(Scope.CALENDAR)
