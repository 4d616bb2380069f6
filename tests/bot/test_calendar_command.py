"""`/change calendar [today|week|next week|month]` and App Home's next seven days: the changes
scheduled and the freezes in force, day by day in the reader's own time zone (as users.info
gives it). The whole bot in this process on a fake clock (Monday 23 November 2026, 09:00 UTC),
with the Slack stand-in; the 50-block limit on the view itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import ids
from bot.views.calendar import calendar_blocks, calendar_message, home_blocks
from bot.views.home import home
from tests.bot.blockkit import parse_message, parse_view
from tests.bot.changes import NOW, a_desk
from tests.bot.in_process import InProcess, in_process
from tests.e2e.harness import eventually, policy_toml
from tests.e2e.steps import normal_request, request_change
from tests.unit.builders import WEEKEND, a_booking, emergency_details
from workflows.calendar import UTC_ZONE, Agenda, agenda, span
from workflows.metrics import dora, last_days
from workflows.model import Window
from workflows.standing import standings

#: Tuesday 24 November 23:30 to Wednesday 01:30 in Berlin; 22:30 to 00:30 in London.
LATE = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)


@pytest.fixture
async def bot(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process(sqlite_template, tmp_path, policy_toml(extra=WEEKEND)) as served:
        served.slack.workspace.users["U0ALICE"].tz = "Europe/Berlin"
        yield served


async def calendar(bot: InProcess, text: str = "", user: str = "U0ALICE") -> dict[str, Any]:
    reply = await bot.driver.slash_command(user, "/change", f"calendar {text}".strip())
    assert reply.status == 200, reply.text
    assert reply.body["response_type"] == "ephemeral", reply.body
    return dict(reply.body)


def lines(answer: dict[str, Any]) -> list[str]:
    """Every line of text the answer shows, in order."""
    found = []
    for block in answer["blocks"]:
        texts = [(block.get("text") or {}).get("text", "")]
        texts += [e.get("text", "") for e in block.get("elements") or []]
        found += [line for t in texts if isinstance(t, str) for line in t.split("\n") if line]
    return found


async def late_change(bot: InProcess) -> dict[str, Any]:
    """Alice requests a change over Berlin's midnight; returns its card."""
    window = {ids.WINDOW_START: LATE, ids.WINDOW_END: LATE + timedelta(hours=2)}
    values = normal_request(**{ids.TITLE: "Rotate the ledger keys", ids.SERVICES: "ledger"})
    return await request_change(bot.driver, bot.slack, **{**values, **window})


async def test_the_week_shows_a_change_on_each_day_it_touches_in_the_readers_time(
    bot: InProcess,
) -> None:
    card = await late_change(bot)
    answer = await calendar(bot)
    shown = lines(answer)

    assert shown[0] == "Change calendar · the next 7 days"
    assert shown[1].startswith("Mon 23 Nov – Sun 29 Nov · times in Europe/Berlin")
    tuesday = shown.index("*Tuesday 24 November*")
    wednesday = shown.index("*Wednesday 25 November*")
    link = f"<https://changebot-test.slack.com/archives/{card['channel']}/p"
    assert shown[tuesday + 1].startswith(f"🟦 *{link}{card['ts'].replace('.', '')}|CHG-0001>*")
    assert shown[tuesday + 1].endswith(
        "· Rotate the ledger keys — 23:30–Wed 25 Nov 01:30 · Normal · Review · ledger"
    )
    assert "— Tue 24 Nov 23:30–01:30 · Normal · Review · ledger" in shown[wednesday + 1]


async def test_the_week_shows_an_emergency_that_names_no_services(bot: InProcess) -> None:
    bot.request(emergency_details(window=Window(LATE, LATE + timedelta(hours=2))))

    shown = lines(await calendar(bot))

    tuesday = shown.index("*Tuesday 24 November*")
    assert shown[tuesday + 1].startswith("🟥 *")
    assert shown[tuesday + 1].endswith(
        "· Block the abusive client at the gateway — 23:30–Wed 25 Nov 01:30 · Emergency · Review"
    )
    wednesday = shown.index("*Wednesday 25 November*")
    assert "— Tue 24 Nov 23:30–01:30 · Emergency · Review" in shown[wednesday + 1]


async def test_the_freezes_in_force_show_on_each_day_with_what_they_allow(bot: InProcess) -> None:
    shown = lines(await calendar(bot, "week"))
    frozen = [shown[i - 1] for i, line in enumerate(shown) if "Freeze “Weekend”" in line]
    assert frozen == [
        "*Monday 23 November*",  # last weekend's, until 08:00
        "*Friday 27 November*",
        "*Saturday 28 November*",
        "*Sunday 29 November*",
    ]
    friday = shown[shown.index("*Friday 27 November*") + 1]
    assert friday.startswith("❄️ Freeze “Weekend” from 16:00 until Mon 30 Nov 08:00 ·")
    saturday = shown[shown.index("*Saturday 28 November*") + 1]
    assert saturday == (
        "❄️ Freeze “Weekend” until Mon 30 Nov 08:00 · emergency changes only · every service"
    )


async def test_a_reader_elsewhere_sees_the_same_change_on_their_own_days(
    bot: InProcess,
) -> None:
    await late_change(bot)
    bot.slack.workspace.users["U0BOB"].tz = "Asia/Tokyo"  # 07:30 to 09:30 on Wednesday
    shown = lines(await calendar(bot, "week", user="U0BOB"))
    assert "*Tuesday 24 November*" not in shown
    wednesday = shown.index("*Wednesday 25 November*")
    assert "— 07:30–09:30 · Normal" in shown[wednesday + 1]


async def test_without_a_time_zone_from_slack_the_calendar_is_in_utc_and_says_so(
    bot: InProcess,
) -> None:
    await late_change(bot)
    bot.slack.workspace.users["U0ERIN"].tz = None
    shown = lines(await calendar(bot, "today", user="U0ERIN"))
    assert shown[0] == "Change calendar · today"
    assert "times in UTC: Slack did not tell me your time zone" in shown[1]
    # Monday 08:00 in Berlin is 07:00 UTC; the change is on Tuesday.
    assert shown[2:] == [
        "*Monday 23 November*",
        "❄️ Freeze “Weekend” until 07:00 · emergency changes only · every service",
    ]


async def test_next_week_is_the_next_monday_to_sunday(bot: InProcess) -> None:
    shown = lines(await calendar(bot, "next week"))
    assert shown[0] == "Change calendar · next week"
    assert shown[1].startswith("Mon 30 Nov – Sun 6 Dec")
    # The weekend freeze ends on Monday 30 November at 08:00; the next starts on Friday.
    assert shown[2] == "*Monday 30 November*"
    assert shown[3].startswith("❄️ Freeze “Weekend” until 08:00")


async def test_an_unknown_span_is_refused_naming_the_spans_understood(bot: InProcess) -> None:
    answer = await calendar(bot, "fortnight")
    assert "blocks" not in answer
    assert "fortnight" in answer["text"]
    assert "`today`, `week`, `next week`, `month`" in answer["text"]


async def test_help_lists_the_calendar(bot: InProcess) -> None:
    reply = await bot.driver.slash_command("U0ALICE", "/change", "help")
    assert "`/change calendar [today|week|next week|month]`" in str(reply.body["blocks"])


async def test_app_home_shows_the_next_seven_days(bot: InProcess) -> None:
    card = await late_change(bot)
    published = len(bot.slack.calls_to("views.publish"))
    reply = await bot.driver.open_home("U0ALICE")
    assert reply.status == 200, reply.text
    await eventually(lambda: len(bot.slack.calls_to("views.publish")) > published)
    view = bot.slack.home_view("U0ALICE")
    assert view is not None
    shown = lines(view)

    week = shown.index("*The next seven days*")
    assert shown[week + 1].startswith("Mon 23 Nov – Sun 29 Nov · times in Europe/Berlin")
    tuesday = shown.index("*Tuesday 24 November*")
    assert f"/p{card['ts'].replace('.', '')}|CHG-0001>*" in shown[tuesday + 1]
    assert shown[tuesday + 1].endswith("· Rotate the ledger keys — 23:30–Wed 25 Nov 01:30 · Review")
    assert "*Wednesday 25 November*" in shown
    assert shown[shown.index("*Friday 27 November*") + 1].startswith("❄️ Freeze “Weekend”")


# -- the view: within Slack's 50 blocks ----------------------------------------------------------


def a_month(per_day: int) -> Agenda:
    """30 days from Monday 23 November (UTC), `per_day` changes each day at 10:00."""
    month = span("month", datetime(2026, 11, 23, 9, tzinfo=UTC), UTC_ZONE)
    bookings = [
        a_booking(n + 1, datetime(2026, 11, 23, 10, tzinfo=UTC) + timedelta(days=n // per_day))
        for n in range(30 * per_day)
    ]
    return agenda(month, bookings, [])


def test_a_busy_month_stays_within_50_blocks_and_says_how_many_more() -> None:
    blocks = calendar_blocks(a_month(per_day=20), zone_known=True, links={})
    assert len(blocks) == 50
    # Two blocks a day (ten lines each): 23 days and half of the 24th fit after the header.
    assert blocks[-4]["text"]["text"].startswith("*Tuesday 15 December*")
    assert blocks[-2]["text"]["text"].startswith("*Wednesday 16 December*")
    last = blocks[-1]["elements"][0]["text"]
    assert last.startswith("…and 130 more (changes and freezes, day by day) from Wed 16 Dec on")
    assert "`/change calendar today`" in last


def test_a_quiet_month_is_shown_whole_a_block_a_day() -> None:
    blocks = calendar_blocks(a_month(per_day=1), zone_known=True, links={})
    assert len(blocks) == 2 + 30
    assert "more" not in str(blocks[-1])


def test_an_empty_span_says_so_plainly() -> None:
    blocks = calendar_blocks(a_month(per_day=0), zone_known=True, links={})
    assert blocks[-1]["text"]["text"] == (
        "Nothing is scheduled and no freeze is in force in the next 30 days."
    )


def test_app_home_with_full_lists_and_a_busy_week_stays_within_slacks_hundred_blocks() -> None:
    desk = a_desk()
    many = standings([desk.stored(desk.request())] * 120, desk.policy, NOW)
    week = replace(a_month(per_day=20), days=a_month(per_day=20).days[:7])
    view = home(
        "UALICE",
        mine=many,
        awaiting_me=many,
        reviews_owed=many,
        policy=desk.policy,
        now=NOW,
        month=dora([], last_days(30, NOW)),  # App Home's line of DORA's metrics too
        calendar=home_blocks(week, zone_known=True, links={}),
    )
    parse_view(view)
    texts = [(b.get("text") or {}).get("text", "") for b in view["blocks"]]
    days = [t for t in texts if t.startswith("*") and "ber*\n" in t]
    assert len(days) == 7
    assert days[0].splitlines()[-1] == (
        "…and 13 more that day: `/change calendar today` or a shorter span shows more."
    )


def test_calendar_blocks_are_valid_block_kit() -> None:
    answer = calendar_message(a_month(per_day=20), zone_known=False, links={1: "https://x.test/1"})
    parse_message(answer)
