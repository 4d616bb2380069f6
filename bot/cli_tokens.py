"""`changebot token create|list|revoke`: the API tokens pipelines use, made and ended by a
named person, each an audit event."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.settings import Settings
from storage import tokens
from workflows.errors import ChangeError
from workflows.ports import SystemClock
from workflows.tokens import Scope, check_name, parse_scopes
from workflows.validation import check_line


def add_commands(commands: Any) -> None:
    token = commands.add_parser(
        "token",
        help="the API tokens pipelines use (the gate, deployment reports) and calendar feeds",
    ).add_subparsers(metavar="ACTION")
    scopes = ", ".join(f"{s.value} ({s.allows})" for s in Scope)

    create = token.add_parser(
        "create",
        help="make a token and print its secret, once",
        description="Make an API token. Its secret is printed once, on standard output; only "
        "a hash of it is kept. A token with --scopes calendar (and no other scope) is a calendar "
        "feed's: the feed's URL is printed instead, built from CHANGEBOT_PUBLIC_URL.",
    )
    create.add_argument("name", help="which pipeline (or calendar) uses it, e.g. ci-prod")
    create.add_argument("--scopes", required=True, help=f"comma-separated: {scopes}")
    create.add_argument("--by", required=True, metavar="WHO", help=_BY)
    create.set_defaults(run=_create)

    listed = token.add_parser("list", help="show the tokens: scopes, who made them, last use")
    listed.add_argument("--all", action="store_true", help="include revoked tokens")
    listed.set_defaults(run=_list)

    revoke = token.add_parser("revoke", help="end a token at once")
    revoke.add_argument("name")
    revoke.add_argument("--by", required=True, metavar="WHO", help=_BY)
    revoke.set_defaults(run=_revoke)


_BY = "who you are, for the audit trail (your Slack user ID or name)"


def _create(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli import Stop, open_database

    try:
        name, scopes, by = check_name(args.name), parse_scopes(args.scopes), _by(args.by)
    except ChangeError as error:
        raise Stop(str(error)) from error
    engine = open_database(settings)
    with Session(engine) as session:
        try:
            token, secret = tokens.create(session, name, scopes, by, SystemClock().now())
        except ChangeError as error:
            raise Stop(str(error)) from error
    granted = ", ".join(sorted(s.value for s in token.scopes))
    if Scope.CALENDAR in token.scopes:
        return _feed_made(token.name, token.created_by, secret, settings)
    print(
        f"Created the API token {token.name!r} (scopes: {granted}), by {token.created_by}. "
        "Its secret follows, shown this once: keep it in your CI's secrets as CHANGEBOT_TOKEN.",
        file=sys.stderr,
    )
    print(secret)
    return 0


def _feed_made(name: str, by: str, secret: str, settings: Settings) -> int:
    """A feed's token is used as its URL: print that, alone on standard output."""
    from bot.calendar_feed import feed_url

    url = feed_url(settings.public_url, secret)
    where = (
        "Subscribe to this URL in Google Calendar, Outlook or Apple Calendar"
        if settings.public_url
        else "CHANGEBOT_PUBLIC_URL is not set, so this is only the feed's path: set "
        "CHANGEBOT_PUBLIC_URL to where people reach changebot (https://changebot.example.com) "
        "and put that in front of it to subscribe"
    )
    print(
        f"Created the calendar feed token {name!r}, by {by}. {where}. It is shown this once; "
        f"anyone with the URL can read the calendar: `changebot token revoke {name}` ends it.",
        file=sys.stderr,
    )
    print(url)
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli import open_database

    engine = open_database(settings)
    with Session(engine) as session:
        found = tokens.listed(session, revoked=args.all)
    if not found:
        print("No API tokens yet: make one with `changebot token create NAME --scopes ...`.")
        return 0
    rows: list[tuple[str, ...]] = [
        ("NAME", "SCOPES", "CREATED BY", "CREATED", "LAST USED", "REVOKED")
    ]
    for t in found:
        revoked = f"{_day(t.revoked_at)} by {t.revoked_by}" if t.revoked_at else "-"
        rows.append(
            (
                t.name,
                ",".join(sorted(s.value for s in t.scopes)),
                t.created_by,
                _day(t.created_at),
                _day(t.last_used_at) if t.last_used_at else "never",
                revoked,
            )
        )
    if not args.all:
        rows = [row[:-1] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli import Stop, open_database

    try:
        by = _by(args.by)
    except ChangeError as error:
        raise Stop(str(error)) from error
    engine = open_database(settings)
    with Session(engine) as session:
        try:
            token = tokens.revoke(session, args.name.strip(), by, SystemClock().now())
        except ChangeError as error:
            raise Stop(str(error)) from error
    print(f"Revoked the API token {token.name!r}: it is refused from now on.")
    return 0


def _by(text: str) -> str:
    return check_line("by", text, 40, required=True)


def _day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""
