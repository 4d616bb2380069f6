"""The change calendar for one reader, in their own time zone: `/change calendar [span]` and
App Home's next seven days."""

from __future__ import annotations

from typing import Any

from bot import queries
from bot.services import Services
from bot.views import calendar as calendar_view
from bot.views import messages
from bot.views.common import AnyBlock
from workflows.calendar import HOME_SPAN, UTC_ZONE, Agenda, Span, span, zone_named
from workflows.errors import ValidationFailed


async def calendar_response(services: Services, user_id: str, word: str) -> dict[str, Any]:
    """The answer to `/change calendar [today|week|next week|month]`."""
    zone = zone_named(await services.directory.time_zone(user_id))
    try:
        asked = span(word, services.clock.now(), zone or UTC_ZONE)
    except ValidationFailed as error:
        return messages.refusal(error.reason)
    found, links = await _read(services, asked)
    return calendar_view.calendar_message(found, zone_known=zone is not None, links=links)


async def home_calendar(services: Services, user_id: str) -> list[AnyBlock]:
    """App Home's next seven days."""
    zone = zone_named(await services.directory.time_zone(user_id))
    asked = span(HOME_SPAN, services.clock.now(), zone or UTC_ZONE)
    found, links = await _read(services, asked)
    return calendar_view.home_blocks(found, zone_known=zone is not None, links=links)


async def _read(services: Services, asked: Span) -> tuple[Agenda, dict[int, str]]:
    """The agenda of the span asked, and links to the threads of its changes."""
    found = await services.query(queries.calendar, services.policy, asked)
    links = {number: services.permalink(*where) for number, where in found.threads.items()}
    # The same days as asked; the span keeps the word the person used, for the header.
    return found.agenda, {n: url for n, url in links.items() if url}
