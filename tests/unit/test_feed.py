"""The calendar feed's content, on a fixed clock: the span it covers, what a change's event and
a freeze occurrence's event say, and freezes kept at their local time across a DST change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.unit.builders import a_booking as booking
from tests.unit.builders import utc, weekend
from workflows.feed import Status, change_event, feed, freeze_event, span
from workflows.model import Stage, Window
from workflows.schedule import Booking

NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
LINK = "https://acme.slack.com/archives/C0CHANGES/p1764000000000100"


def a_booking(number: int = 42, stage: Stage = Stage.APPROVE, **fields: object) -> Booking:
    """The Postgres upgrade of the night of 20 October (Berlin), `fields` changed."""
    fields = {"title": "Upgrade Postgres to 16.4", "stage": stage, **fields}
    return booking(number, utc(2026, 10, 20, 22), 1.5, "billing-db", "reporting", **fields)


def test_the_feed_spans_thirty_days_back_and_a_hundred_and_eighty_ahead() -> None:
    assert span(NOW) == Window(utc(2026, 9, 1, 9), utc(2027, 3, 30, 9))


def test_a_change_is_an_event_with_its_reference_title_class_stage_services_and_thread() -> None:
    event = change_event(a_booking(), LINK)

    assert event.uid == "CHG-0042@changebot"
    assert event.summary == "CHG-0042 Upgrade Postgres to 16.4"
    assert event.description.splitlines() == [
        "Normal change, stage: Approve.",
        "Services: billing-db, reporting.",
        f"Thread: {LINK}",
    ]
    assert event.url == LINK
    assert (event.start, event.end) == (utc(2026, 10, 20, 22), utc(2026, 10, 20, 23, 30))
    assert event.start.utcoffset() == timedelta(0)


def test_a_change_whose_thread_is_not_posted_yet_has_no_link() -> None:
    event = change_event(a_booking())

    assert event.url == ""
    assert "Thread" not in event.description


def test_a_change_is_tentative_until_authorised_then_confirmed() -> None:
    waiting = [change_event(a_booking(stage=s)).status for s in (Stage.REQUEST, Stage.APPROVE)]
    authorised = [change_event(a_booking(stage=s)).status for s in (Stage.DEPLOY, Stage.CLOSED)]

    assert waiting == [Status.TENTATIVE, Status.TENTATIVE]
    assert authorised == [Status.CONFIRMED, Status.CONFIRMED]


def test_the_uid_of_a_change_stays_when_it_moves_or_is_renamed() -> None:
    moved = a_booking(
        title="Upgrade Postgres to 16.5",
        window=Window(utc(2026, 11, 2, 8), utc(2026, 11, 2, 9)),
        stage=Stage.DEPLOY,
    )

    assert change_event(moved).uid == change_event(a_booking()).uid


def test_a_weekend_freeze_starts_at_16_local_on_each_friday_across_the_end_of_summer_time() -> None:
    # Summer time ends in Berlin on Sunday 25 October 2026.
    occurrences = weekend().occurrences(utc(2026, 10, 12, 12), utc(2026, 11, 4))

    events = [freeze_event(one) for one in occurrences]

    local = [(e.start.astimezone(BERLIN).strftime("%a %d %H:%M")) for e in events]
    assert local == ["Fri 16 16:00", "Fri 23 16:00", "Fri 30 16:00"]
    assert [e.start.astimezone(UTC).hour for e in events] == [14, 14, 15]
    assert [e.end.astimezone(BERLIN).strftime("%a %d %H:%M") for e in events] == [
        "Mon 19 08:00",
        "Mon 26 08:00",
        "Mon 02 08:00",
    ]
    # The weekend the clocks go back is an hour longer. (Python subtracts times of one zone
    # as wall-clock times: in UTC, to count the hours that pass.)
    assert [e.end.astimezone(UTC) - e.start.astimezone(UTC) for e in events] == [
        timedelta(hours=64),
        timedelta(hours=65),
        timedelta(hours=64),
    ]
    assert all(e.start.tzinfo == BERLIN and e.end.tzinfo == BERLIN for e in events)


def test_a_freeze_event_says_its_reason_what_it_covers_and_what_it_allows() -> None:
    (one,) = weekend().occurrences(utc(2026, 10, 24), utc(2026, 10, 25))
    (year_end,) = weekend(
        name="Year end",
        reason="Sales peak.",
        services=("checkout", "payments"),
        allows="none",
        rrule="",
        duration=None,
        start=datetime(2026, 12, 18),
        end=datetime(2027, 1, 4),
        timezone="America/New_York",
    ).occurrences(utc(2026, 12, 1), utc(2027, 1, 1))

    event, other = freeze_event(one), freeze_event(year_end)

    assert event.uid == "freeze-weekend-25014bff-20261023T1600@changebot"
    assert event.summary == "Freeze: Weekend"
    assert event.description.splitlines() == [
        "Nobody is around to fix it.",
        "Covers: every service.",
        "Only emergency changes may deploy.",
    ]
    assert other.uid == "freeze-year-end-cdc8b8ba-20261218T0000@changebot"
    assert other.description.splitlines()[1:] == [
        "Covers: checkout, payments.",
        "No change may deploy.",
    ]
    assert other.start.tzinfo == ZoneInfo("America/New_York")


def test_freezes_whose_names_read_alike_starting_together_are_events_of_their_own() -> None:
    names = ["Year end", "Year-end", "Новый год", "Рождество"]
    freezes = [weekend(name=name) for name in names]

    events = feed([], {}, freezes, Window(utc(2026, 10, 23), utc(2026, 10, 24)))

    assert len(events) == len({e.uid for e in events}) == 4


def test_every_event_is_transparent_so_subscribers_are_not_marked_busy() -> None:
    events = feed([a_booking()], {}, [weekend()], span(NOW))

    assert events and all(e.transparent for e in events)


def test_the_feed_has_the_changes_given_and_the_freeze_occurrences_in_its_span_in_order() -> None:
    window = Window(utc(2026, 10, 19, 12), utc(2026, 10, 31))
    later = a_booking(43, window=Window(utc(2026, 10, 27, 8), utc(2026, 10, 27, 9)))

    events = feed([a_booking(), later], {42: LINK}, [weekend()], window)

    assert [e.summary.split(" ")[0] for e in events] == [
        "CHG-0042",  # Tue 20 October
        "Freeze:",  # Fri 23 October
        "CHG-0043",  # Tue 27 October
        "Freeze:",  # Fri 30 October
    ]
    assert [e.url for e in events if e.uid.startswith("CHG")] == [LINK, ""]


def test_a_freeze_occurrence_begun_before_the_span_is_in_it_while_it_lasts() -> None:
    # From Saturday: the weekend freeze began on Friday and runs to Monday.
    events = feed([], {}, [weekend()], Window(utc(2026, 10, 24), utc(2026, 10, 25)))

    assert [e.uid for e in events] == ["freeze-weekend-25014bff-20261023T1600@changebot"]
