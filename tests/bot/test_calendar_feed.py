"""The iCalendar feed, `/calendar.ics`: parsed back with the `icalendar` library, a Berlin
freeze stays at 16:00 local across the end of summer time (read through the feed's own
VTIMEZONE, not the parser's copy of the zone); through the real server, the feed opens for a
calendar token, links each change to its thread, and for anything else — no token, a wrong or
revoked one, a pipeline's — answers exactly as a page that does not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from icalendar import Calendar, Timezone
from sqlmodel import Session

from bot import ids
from bot.calendar_feed import render
from storage import tokens
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually, policy_toml
from tests.e2e.steps import request_change
from tests.unit.builders import WEEKEND, a_booking, emergency_details, weekend
from workflows.feed import feed
from workflows.model import Stage, Window
from workflows.tokens import Scope

NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
LINK = "https://acme.slack.com/archives/C0CHANGES/p1764000000000100"
WEEKEND_FREEZE = weekend()


def parsed(body: bytes) -> Calendar:
    return Calendar.from_ical(body)


def events(calendar: Calendar) -> dict[str, Any]:
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


# -- the document -------------------------------------------------------------------------------


def test_a_berlin_freeze_stays_at_16_local_across_the_end_of_summer_time() -> None:
    # Summer time ends in Berlin on Sunday 25 October 2026.
    window = Window(datetime(2026, 10, 12, 12, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC))

    calendar = parsed(render(feed([], {}, [WEEKEND_FREEZE], window), NOW))

    (vtimezone,) = calendar.walk("VTIMEZONE")
    assert str(vtimezone["TZID"]) == "Europe/Berlin"
    own_zone = Timezone.from_ical(vtimezone.to_ical()).to_tz(lookup_tzid=False)
    found = sorted(events(calendar).values(), key=lambda e: e.decoded("DTSTART"))
    assert [e["DTSTART"].params["TZID"] for e in found] == ["Europe/Berlin"] * 3
    assert [e["DTSTART"].to_ical().decode() for e in found] == [
        "20261016T160000",
        "20261023T160000",
        "20261030T160000",
    ]
    starts = [e.decoded("DTSTART").replace(tzinfo=own_zone) for e in found]
    assert [s.astimezone(UTC).strftime("%d %H:%M") for s in starts] == [
        "16 14:00",
        "23 14:00",
        "30 15:00",
    ]
    ends = [e.decoded("DTEND").replace(tzinfo=own_zone).astimezone(UTC) for e in found]
    assert [end.strftime("%d %H:%M") for end in ends] == ["19 06:00", "26 07:00", "02 07:00"]
    assert all(str(e["TRANSP"]) == "TRANSPARENT" for e in found)
    assert str(found[1]["SUMMARY"]) == "Freeze: Weekend"


def test_a_change_is_an_event_in_utc_with_its_thread_as_url_and_a_stable_uid() -> None:
    start = datetime(2026, 10, 20, 22, tzinfo=UTC)
    bookings = [
        a_booking(n, start, 1, "billing-db", title="Upgrade Postgres to 16.4", stage=stage)
        for n, stage in ((42, Stage.APPROVE), (43, Stage.DEPLOY))
    ]

    calendar = parsed(render(feed(bookings, {42: LINK}, [], Window(NOW, start)), NOW))

    assert str(calendar["VERSION"]) == "2.0" and "changebot" in str(calendar["PRODID"])
    assert calendar.walk("VTIMEZONE") == []
    assert str(calendar["X-PUBLISHED-TTL"]) == "PT1H"
    found = events(calendar)
    assert set(found) == {"CHG-0042@changebot", "CHG-0043@changebot"}
    waiting, authorised = found["CHG-0042@changebot"], found["CHG-0043@changebot"]
    assert str(waiting["SUMMARY"]) == "CHG-0042 Upgrade Postgres to 16.4"
    assert waiting["DTSTART"].to_ical().decode() == "20261020T220000Z"
    assert waiting["DTEND"].to_ical().decode() == "20261020T230000Z"
    assert waiting.decoded("DTSTAMP") == NOW
    assert str(waiting["URL"]) == LINK
    assert str(waiting["DESCRIPTION"]).splitlines() == [
        "Normal change, stage: Approve.",
        "Services: billing-db.",
        f"Thread: {LINK}",
    ]
    assert (str(waiting["STATUS"]), str(authorised["STATUS"])) == ("TENTATIVE", "CONFIRMED")
    assert "URL" not in authorised


def test_an_empty_feed_is_still_a_calendar() -> None:
    calendar = parsed(render([], NOW))

    assert calendar.walk("VEVENT") == [] and str(calendar["VERSION"]) == "2.0"


# -- through the server -------------------------------------------------------------------------


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path, policy_toml(extra=WEEKEND)) as served:
        served.clock.current = datetime.now(UTC)
        yield served


@pytest.fixture
async def http(bot: InProcess) -> AsyncIterator[aiohttp.ClientSession]:
    base = bot.driver.http.url.removesuffix("/slack/events")
    async with aiohttp.ClientSession(base_url=base) as session:
        yield session


def a_tuesday_window() -> dict[str, datetime]:
    """A window next Tuesday: outside the weekend freeze whenever the test runs."""
    today = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    start = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    return {ids.WINDOW_START: start, ids.WINDOW_END: start + timedelta(hours=1)}


def a_token(bot: InProcess, name: str, *scopes: Scope) -> str:
    with Session(bot.bot.services.engine) as session:
        _, secret = tokens.create(session, name, frozenset(scopes), "UOPS", bot.clock.now())
    return secret


def revoke(bot: InProcess, name: str) -> None:
    with Session(bot.bot.services.engine) as session:
        tokens.revoke(session, name, "UOPS", bot.clock.now())


async def fetch(http: aiohttp.ClientSession, path: str, **params: str) -> tuple[int, Any, bytes]:
    async with http.get(path, params=params) as response:
        return response.status, response.headers, await response.read()


def comparable(headers: Any) -> dict[str, str]:
    """The headers of a response, less those that differ on every request."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in ("date", "x-request-id")}


async def test_the_feed_serves_a_calendar_with_each_change_linked_to_its_thread(
    bot: InProcess, http: aiohttp.ClientSession
) -> None:
    card = await request_change(bot.driver, bot.slack, **a_tuesday_window())
    secret = a_token(bot, "team-calendar", Scope.CALENDAR)
    await eventually(lambda: bot.bot.publisher.workspace_url)

    status, headers, body = await fetch(http, "/calendar.ics", token=secret)

    assert status == 200
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert headers["Cache-Control"] == "private, max-age=300"
    found = events(parsed(body))
    change = found["CHG-0001@changebot"]
    link = bot.bot.publisher.permalink(card["channel"], card["ts"])
    assert link.startswith("https://") and str(change["URL"]) == link
    assert str(change["SUMMARY"]) == "CHG-0001 Upgrade Postgres to 16.4"
    freezes = [e for uid, e in found.items() if uid.startswith("freeze-weekend-")]
    # Every Friday from 30 days back to 180 ahead: 30 or 31 of them.
    assert 29 <= len(freezes) <= 31
    assert {e.decoded("DTSTART").strftime("%a %H:%M") for e in freezes} == {"Fri 16:00"}


async def test_the_feed_holds_an_emergency_that_names_no_services(
    bot: InProcess, http: aiohttp.ClientSession
) -> None:
    when = a_tuesday_window()
    bot.request(emergency_details(window=Window(when[ids.WINDOW_START], when[ids.WINDOW_END])))
    secret = a_token(bot, "team-calendar", Scope.CALENDAR)

    status, _, body = await fetch(http, "/calendar.ics", token=secret)

    assert status == 200
    change = events(parsed(body))["CHG-0001@changebot"]
    assert str(change["SUMMARY"]) == "CHG-0001 Block the abusive client at the gateway"
    assert change.decoded("DTSTART") == when[ids.WINDOW_START]
    assert "Services: none named." in str(change["DESCRIPTION"])


async def test_no_wrong_revoked_or_pipeline_token_gets_exactly_what_an_unknown_page_gets(
    bot: InProcess, http: aiohttp.ClientSession
) -> None:
    secret = a_token(bot, "team-calendar", Scope.CALENDAR)
    pipeline = a_token(bot, "ci-prod", Scope.GATE)
    opened, _, _ = await fetch(http, "/calendar.ics", token=secret)
    revoke(bot, "team-calendar")

    unknown = await fetch(http, "/no-such-page")
    refused = [
        await fetch(http, "/calendar.ics"),
        await fetch(http, "/calendar.ics", token=""),
        await fetch(http, "/calendar.ics", token="cbt_" + "x" * 43),
        await fetch(http, "/calendar.ics", token="not ascii: é"),
        await fetch(http, "/calendar.ics", token=secret),  # revoked
        await fetch(http, "/calendar.ics", token=pipeline),
    ]

    assert opened == 200
    assert unknown[0] == 404 and "X-Request-Id" in unknown[1]
    for status, headers, body in refused:
        assert (status, comparable(headers), body) == (
            unknown[0],
            comparable(unknown[1]),
            unknown[2],
        )


async def test_a_revoked_token_ends_the_feed_at_once_and_a_new_one_opens_it(
    bot: InProcess, http: aiohttp.ClientSession
) -> None:
    first = a_token(bot, "team-calendar", Scope.CALENDAR)
    before, _, _ = await fetch(http, "/calendar.ics", token=first)

    revoke(bot, "team-calendar")
    after, _, _ = await fetch(http, "/calendar.ics", token=first)
    second = a_token(bot, "team-calendar", Scope.CALENDAR)
    renewed, _, _ = await fetch(http, "/calendar.ics", token=second)

    assert (before, after, renewed) == (200, 404, 200)


async def test_the_feed_notes_when_its_token_was_last_used(
    bot: InProcess, http: aiohttp.ClientSession
) -> None:
    secret = a_token(bot, "team-calendar", Scope.CALENDAR)

    await fetch(http, "/calendar.ics", token=secret)

    with Session(bot.bot.services.engine) as session:
        (token,) = tokens.listed(session)
    assert token.last_used_at == bot.clock.now()


def test_the_vtimezone_holds_the_rules_of_the_years_the_events_span_not_decades() -> None:
    window = Window(datetime(2026, 10, 12, 12, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC))

    body = render(feed([], {}, [WEEKEND_FREEZE], window), NOW)

    (vtimezone,) = parsed(body).walk("VTIMEZONE")
    text = vtimezone.to_ical().decode()
    assert "1980" not in text and "2037" not in text
    assert len(text) < 2000
