"""The change calendar in Block Kit: `/change calendar` (a few lines to a block, within a
message's 50) and App Home's next seven days (one block per day, a few lines each).

Times are the reader's: the agenda's entries are already in their zone, cut into their days.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from itertools import chain, islice
from typing import Any

from bot import text
from bot.views.common import (
    CLASSIFICATION_EMOJI,
    MESSAGE_BLOCKS,
    AnyBlock,
    context,
    divider,
    header,
    section,
    to_dicts,
)
from workflows.calendar import Agenda, Day, Entry, FreezeEntry
from workflows.freezes import Allows

EPHEMERAL = "ephemeral"
#: Lines per day on App Home before "…and N more".
HOME_LINES = 8
#: Lines of a day in one block of `/change calendar` (a busy day takes several blocks).
LINES_PER_BLOCK = 10


def calendar_message(
    agenda: Agenda, *, zone_known: bool, links: Mapping[int, str]
) -> dict[str, Any]:
    """The answer to `/change calendar`, seen only by the person who asked."""
    count = len(agenda.numbers())
    return {
        "response_type": EPHEMERAL,
        "text": _prose("fallback", word=agenda.span.word, count=count),
        "blocks": calendar_blocks(agenda, zone_known=zone_known, links=links),
    }


def calendar_blocks(
    agenda: Agenda, *, zone_known: bool, links: Mapping[int, str]
) -> list[dict[str, Any]]:
    """A header with the span, then each day that has anything: its title, the freezes in
    force and the changes, a line each, a few lines to a block. What does not fit in a
    message's 50 blocks is counted at the end, with a shorter span to ask for."""
    blocks: list[AnyBlock] = [
        header(_prose("title", word=agenda.span.word)),
        _span_line(agenda, zone_known),
    ]
    if agenda.empty:
        return to_dicts([*blocks, section(_prose("nothing", word=agenda.span.word))])
    room = MESSAGE_BLOCKS - len(blocks)
    # Drawn lazily: a busy month has far more lines than a message shows.
    every = (chunk for day in agenda.days if not day.empty for chunk in _chunks(day, links))
    chunks = list(islice(every, room + 1))
    if len(chunks) > room:
        chunks = chunks[: room - 1]  # the last block says what did not fit
        total = sum(len(day.changes) + len(day.freezes) for day in agenda.days)
        hidden = total - sum(len(chunk.lines) for chunk in chunks)
        since = _short_date(_first_hidden(agenda, chunks))
        blocks += [section(chunk.text) for chunk in chunks]
        return to_dicts([*blocks, context(_prose("more", count=hidden, since=since))])
    return to_dicts([*blocks, *(section(chunk.text) for chunk in chunks)])


def _first_hidden(agenda: Agenda, shown: list[_Chunk]) -> date:
    """The first day with a line not shown."""
    last = shown[-1].day if shown else agenda.span.first
    shown_of_last = sum(len(chunk.lines) for chunk in shown if chunk.day == last)
    for day in agenda.days:
        if day.day == last and len(day.changes) + len(day.freezes) > shown_of_last:
            return day.day
        if day.day > last and not day.empty:
            return day.day
    return last


@dataclass(frozen=True)
class _Chunk:
    """Lines of one day that go in one block, after the day's title if it is the first."""

    day: date
    title: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join([self.title, *self.lines] if self.title else self.lines)


def _chunks(day: Day, links: Mapping[int, str]) -> Iterator[_Chunk]:
    """The day's title, freezes and changes, at most LINES_PER_BLOCK lines and Slack's
    3,000 characters to a block."""
    lines = chain(
        (_freeze_line(one, day.day) for one in day.freezes),
        (_change_line(entry, day.day, links) for entry in day.changes),
    )
    taken: list[str] = []
    title, size = _prose("day_title", day=_long_date(day.day)), 0
    for line in lines:
        size += len(line) + 1
        if taken and (len(taken) == LINES_PER_BLOCK or size + len(title) > text.MRKDWN_LIMIT):
            yield _Chunk(day.day, title, tuple(taken))
            title, taken, size = "", [], len(line) + 1
        taken.append(line)
    yield _Chunk(day.day, title, tuple(taken))


def home_blocks(agenda: Agenda, *, zone_known: bool, links: Mapping[int, str]) -> list[AnyBlock]:
    """App Home's next seven days, compact: one block per day that has anything."""
    blocks: list[AnyBlock] = [
        divider(),
        section(_prose("home_title")),
        _span_line(agenda, zone_known),
    ]
    if agenda.empty:
        return [*blocks, context(_prose("nothing", word=agenda.span.word))]
    for day in agenda.days:
        if day.empty:
            continue
        lines = [_freeze_line(one, day.day) for one in day.freezes]
        lines += [_compact_line(entry, day.day, links) for entry in day.changes]
        if len(lines) > HOME_LINES:
            lines = [
                *lines[: HOME_LINES - 1],
                _prose("day_more", count=len(lines) - HOME_LINES + 1),
            ]
        blocks.append(section("\n".join([_prose("day_title", day=_long_date(day.day)), *lines])))
    return blocks


def _span_line(agenda: Agenda, zone_known: bool) -> AnyBlock:
    span = agenda.span
    return context(
        _prose(
            "span_line",
            first=_short_date(span.first),
            last=_short_date(span.last),
            zone=span.zone.key,
            zone_known=zone_known,
        )
    )


def _change_line(entry: Entry, day: date, links: Mapping[int, str]) -> str:
    booking = entry.booking
    return _line(
        "change_line",
        entry,
        day,
        links,
        classification=booking.classification.label,
        services=list(booking.services),
    )


def _compact_line(entry: Entry, day: date, links: Mapping[int, str]) -> str:
    return _line("compact_line", entry, day, links)


def _line(macro: str, entry: Entry, day: date, links: Mapping[int, str], **more: Any) -> str:
    """A change on a day, as the macro `macro` writes it: what every line of it shows, and
    `more`."""
    booking = entry.booking
    return _prose(
        macro,
        ref=booking.ref,
        url=links.get(booking.number, ""),
        title=booking.title,
        emoji=CLASSIFICATION_EMOJI[booking.classification],
        stage=booking.stage.label,
        times=_times(entry, day),
        **more,
    )


def _freeze_line(one: FreezeEntry, day: date) -> str:
    return _prose(
        "freeze_line",
        freeze=one.freeze.name,
        allows_emergency=one.freeze.allows is Allows.EMERGENCY,
        since="" if one.from_before else _moment(one.since, day),
        until=_moment(one.until, day),
        services=list(one.freeze.services),
    )


def _times(entry: Entry, day: date) -> str:
    """09:00–10:00 on the day; the date too for an end or a start on another day."""
    start = _moment(entry.start, day) if entry.from_before else f"{entry.start:%H:%M}"
    end = _moment(entry.end, day) if entry.goes_on else f"{entry.end:%H:%M}"
    return f"{start}–{end}"


def _moment(moment: datetime, day: date) -> str:
    """A local time, with its date when that is not `day`."""
    if moment.date() == day:
        return f"{moment:%H:%M}"
    return f"{_short_date(moment.date())} {moment:%H:%M}"


def _short_date(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _long_date(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


def _prose(macro: str, **values: Any) -> str:
    return text.render_macro("calendar.j2", macro, **values)
