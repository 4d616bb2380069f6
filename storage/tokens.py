"""API tokens in the database: only a hash of each secret, and who made and ended it.

Creating and revoking a token are audit events, written in the same transaction as the row.
A revoked token is refused from the next request on, by every replica: nothing is cached.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Index, Table, bindparam, or_, text, update
from sqlmodel import Field, Session, SQLModel, col, select

from storage import driver
from storage.repositories import SqlAudit, read_moment
from storage.tables import _when
from workflows.audit import AuditEntry
from workflows.errors import Conflict, NotFound
from workflows.tokens import (
    CREATED,
    REVOKED,
    TOKENS_REF,
    ApiToken,
    Scope,
    check_scopes,
    hash_secret,
)

#: Secrets start with this, so a scanner (or a person) can tell what a leaked one is.
SECRET_PREFIX = "cbt_"
#: `last_used_at` is written at most this often per token: a busy pipeline asking the gate
#: every few seconds should not write a row each time.
LAST_USE_PRECISION = timedelta(minutes=1)


class ApiTokenRow(SQLModel, table=True):
    __tablename__ = "api_tokens"
    __table_args__ = (
        # A name is reused only once its token is revoked (a rotation).
        Index(
            "ux_api_tokens_active_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=30)
    secret_hash: str = Field(max_length=64, unique=True)
    scopes: str = Field(max_length=100)
    created_by: str = Field(max_length=80)
    created_at: datetime = _when()
    last_used_at: datetime | None = _when(nullable=True)
    revoked_at: datetime | None = _when(nullable=True)
    revoked_by: str = Field(default="", max_length=80)


def to_token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        name=row.name,
        scopes=_scopes_of(row.scopes),
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


def _scopes_of(stored: str) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in stored.split(",") if s)


def _scopes(scopes: Iterable[Scope]) -> str:
    return ",".join(sorted(s.value for s in scopes))


def create(
    session: Session, name: str, scopes: frozenset[Scope], by: str, at: datetime
) -> tuple[ApiToken, str]:
    """Make a token; returns it and its secret, which is shown once and never stored."""
    check_scopes(scopes)
    if _active(session, name) is not None:
        raise Conflict(
            f"A token named {name!r} exists already: revoke it first (`changebot token revoke "
            f"{name}`), or choose another name."
        )
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(
        name=name,
        secret_hash=hash_secret(secret),
        scopes=_scopes(scopes),
        created_by=by,
        created_at=at,
    )
    session.add(row)
    details = {"name": name, "scopes": sorted(s.value for s in scopes)}
    SqlAudit(session).append(AuditEntry(at, by, CREATED, TOKENS_REF, "", "", details))
    session.commit()
    return to_token(row), secret


def revoke(session: Session, name: str, by: str, at: datetime) -> ApiToken:
    # The chain's head first, as the gate's rounds take it before they note a token's use:
    # in the other order a round and a revocation of a token in use would each hold what
    # the other waits for (PostgreSQL would end one of them after a second).
    audit = SqlAudit(session)
    audit.lock_head()
    row = _active(session, name)
    if row is None:
        raise NotFound("active API token named", repr(name))
    row.revoked_at, row.revoked_by = at, by
    session.add(row)
    details = {"name": name}
    audit.append(AuditEntry(at, by, REVOKED, TOKENS_REF, "", "", details))
    session.commit()
    return to_token(row)


def listed(session: Session, *, revoked: bool = False) -> list[ApiToken]:
    query = select(ApiTokenRow)
    if not revoked:
        query = query.where(col(ApiTokenRow.revoked_at).is_(None))
    return [to_token(row) for row in session.exec(query.order_by(col(ApiTokenRow.name)))]


def _active(session: Session, name: str) -> ApiTokenRow | None:
    query = select(ApiTokenRow).where(
        ApiTokenRow.name == name, col(ApiTokenRow.revoked_at).is_(None)
    )
    return session.exec(query).first()


_TOKENS = cast(Table, ApiTokenRow.__table__)  # type: ignore[attr-defined]
#: The active tokens among some hashes: the gate asks this of every round of questions,
#: through the driver (storage/driver.py).
_ACTIVE = (
    "SELECT id, name, secret_hash, scopes, created_by, created_at, last_used_at "
    "FROM api_tokens WHERE secret_hash IN ({}) AND revoked_at IS NULL"
)


_USED = (
    update(_TOKENS)
    .where(_TOKENS.c.id.in_(bindparam("ids", expanding=True)))
    .where(or_(_TOKENS.c.last_used_at.is_(None), _TOKENS.c.last_used_at <= bindparam("stale")))
    .values(last_used_at=bindparam("now"))
)


def authenticate(
    session: Session, secret_hashes: Iterable[str], now: datetime
) -> dict[str, ApiToken]:
    """The active tokens among these secrets' hashes, by hash; notes their use. Does not
    commit: the caller's transaction does."""
    read = reading(secret_hashes)
    if not read.params:
        return {}
    driver.together(session, [read])
    return authenticated(session, read, now)


def reading(secret_hashes: Iterable[str]) -> driver.Statement:
    """The read of the active tokens among these hashes, to run with other statements
    (`driver.together`) and give to `authenticated`."""
    return driver.keyed(_ACTIVE, secret_hashes)


def authenticated(session: Session, read: driver.Statement, now: datetime) -> dict[str, ApiToken]:
    """The tokens `read` (see `reading`) found, by hash; notes their use."""
    assert read.rows is not None, "run the read first"
    found: dict[str, ApiToken] = {}
    stale = now - LAST_USE_PRECISION
    used = []
    for id_, name, secret_hash, scopes, created_by, created_at, last_used_at in read.rows:
        last_used = None if last_used_at is None else read_moment(last_used_at)
        found[secret_hash] = ApiToken(
            name=name,
            scopes=_scopes_of(scopes),
            created_by=created_by,
            created_at=read_moment(created_at),
            last_used_at=last_used,
        )
        if last_used is None or last_used <= stale:
            used.append(id_)
    if used:
        session.execute(_USED, {"ids": used, "stale": stale, "now": now})
    return found
