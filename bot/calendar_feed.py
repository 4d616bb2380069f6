"""The iCalendar feed, `GET /calendar.ics?token=…`, that Google Calendar, Outlook and Apple
Calendar subscribe to: the changes and freezes of workflows/feed.py, written as RFC 5545 with
the `icalendar` library.

The token is the whole of the feed's protection, and a calendar app cannot send a header, so
it is in the URL. A request without a token that opens the feed — none, a wrong one, a
revoked one, or a pipeline's token — is answered exactly as a path that does not exist is:
nothing tells a guesser that a token was close, once valid, or of another kind. A revoked
token is refused from its next request on: nothing is cached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import quote

from aiohttp import web
from icalendar import Calendar, Event
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot import queries
from bot.services import Services
from storage import tokens
from workflows.feed import FeedEvent, feed, span
from workflows.tokens import hash_secret, reads_feed

log = logging.getLogger(__name__)

PATH = "/calendar.ics"
CONTENT_TYPE = "text/calendar; charset=utf-8"
#: Calendar apps poll on their own schedule (Google every few hours); five minutes of private
#: caching spares the database a burst of them and keeps a revocation prompt.
CACHE_CONTROL = "private, max-age=300"
#: How often we suggest calendar apps fetch the feed again (those that listen).
REFRESH = timedelta(hours=1)
#: The same, as Outlook and Apple Calendar read it (an RFC 5545 duration, written out).
PUBLISHED_TTL = "PT1H"
#: Longest token looked up (ours are 47 characters).
MAX_TOKEN = 200
#: How far either side of its events a VTIMEZONE describes its zone's rules.
ZONE_MARGIN = timedelta(days=366)
PRODID = "-//changebot//calendar feed//EN"
NAME = "changebot: changes and freezes"


def feed_url(public_url: str, secret: str) -> str:
    """The URL to subscribe to: the path alone when changebot's public address is not known."""
    return f"{public_url.rstrip('/')}{PATH}?token={quote(secret, safe='')}"


def render(events: Sequence[FeedEvent], now: datetime) -> bytes:
    """The feed as an iCalendar document, with a VTIMEZONE for each freeze's zone."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", NAME)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", PUBLISHED_TTL)
    for one in events:
        event = Event()
        event.add("uid", one.uid)
        event.add("dtstamp", now)
        event.add("dtstart", one.start)
        event.add("dtend", one.end)
        event.add("summary", one.summary)
        event.add("description", one.description)
        event.add("status", one.status.value)
        event.add("transp", "TRANSPARENT" if one.transparent else "OPAQUE")
        if one.url:
            event.add("url", one.url)
        if one.categories:
            event.add("categories", list(one.categories))
        calendar.add_component(event)
    if events:
        # Each zone's rules for the years around the events, not from 1970 to 2038.
        first = min(e.start for e in events).date() - ZONE_MARGIN
        last = max(e.end for e in events).date() + ZONE_MARGIN
        calendar.add_missing_timezones(first_date=first, last_date=last)
    ical: bytes = calendar.to_ical()
    return ical


class CalendarFeed:
    def __init__(self, services: Services) -> None:
        self.services = services

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        secret = request.query.get("token", "")
        if not _plausible(secret):
            raise web.HTTPNotFound()
        try:
            body = await asyncio.to_thread(self._read, hash_secret(secret))
        except SQLAlchemyError:
            log.exception("the calendar feed could not reach the database")
            return web.Response(
                status=503,
                text="changebot cannot read its database just now; try again shortly.\n",
                headers={"Retry-After": "60"},
            )
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(
            body=body,
            headers={"Content-Type": CONTENT_TYPE, "Cache-Control": CACHE_CONTROL},
        )

    def _read(self, secret_hash: str) -> bytes | None:
        """The feed, or None if the token does not open it. The token's last use is noted
        (as an API token's is) before anything else is read."""
        now = self.services.clock.now()
        with Session(self.services.engine) as session:
            token = tokens.authenticate(session, [secret_hash], now).get(secret_hash)
            session.commit()
            if not reads_feed(token):
                return None
            window = span(now)
            bookings, threads = queries.booked(session, window)
        links = {n: self.services.permalink(channel, ts) for n, (channel, ts) in threads.items()}
        freezes = self.services.policy.freeze
        return render(feed(bookings, links, freezes, window), now)


def _plausible(secret: str) -> bool:
    """Worth looking up: a short line of printable ASCII, as our tokens are."""
    return 0 < len(secret) <= MAX_TOKEN and secret.isascii() and secret.isprintable()
