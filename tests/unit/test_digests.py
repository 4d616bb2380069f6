"""What a digest says and when the next is due: pure rules, no keys, files or database."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from workflows.digests import (
    FORMAT_1,
    Digest,
    DigestMalformed,
    Named,
    allowed_gap,
    check_digests,
    file_name,
    is_digest_name,
    next_due,
    parse,
)

HOUR = timedelta(hours=1)

AT = datetime(2026, 11, 23, 9, 0, 0, 250000, tzinfo=UTC)
DIGEST = Digest(
    at=AT,
    seq=12,
    hash="ab" * 32,
    events=12,
    since=10,
    marks="11111111" + "22222222",
    previous=None,
    key="sha256:" + "0" * 64,
    every=3600,
    signature="c2lnbmVk",
)


def test_a_digest_reads_back_as_written_and_its_signed_body_leaves_out_the_signature() -> None:
    assert parse(DIGEST.to_json()) == DIGEST
    assert b"signature" not in DIGEST.body()
    assert DIGEST.body() == DIGEST.signed("other").body()


def test_a_digest_keeps_a_mark_of_each_event_since_the_one_before_it_only() -> None:
    assert [DIGEST.mark_of(seq) for seq in (10, 11, 12, 13)] == [None, "11111111", "22222222", None]


def test_file_names_sort_as_the_digests_were_written() -> None:
    times = [AT, AT + timedelta(microseconds=1), AT + timedelta(hours=1), AT + timedelta(days=40)]
    names = [file_name(t) for t in times]

    assert names == sorted(names)
    assert names[0] == "digest-20261123T090000.250000Z.json"
    assert all(is_digest_name(n) for n in names)
    assert not is_digest_name(".digest-x.tmp")


def test_the_next_digest_is_due_on_the_next_whole_interval() -> None:
    assert next_due(AT, timedelta(hours=1)) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    on_the_hour = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert next_due(on_the_hour, timedelta(hours=1)) == on_the_hour + timedelta(hours=1)


def test_a_digest_counts_as_missing_after_its_interval_and_some_slack() -> None:
    assert allowed_gap(timedelta(hours=1)) == timedelta(hours=1, minutes=15)
    assert allowed_gap(timedelta(minutes=4)) == timedelta(minutes=9)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "it is not JSON"),
        ("[]", "it is not a JSON object"),
        ('{"format": "other/1"}', "its format is 'other/1'"),
        (DIGEST.to_json().replace('"seq": 12', '"seq": "12"'), "its 'seq' is missing or not a"),
        (DIGEST.to_json().replace("+00:00", ""), "has no time zone"),
        (DIGEST.to_json().replace('"seq"', '"extra": 1, "seq"'), "fields no digest has: extra"),
        ("[" * 100_000, "nested too deeply"),
        (
            DIGEST.to_json().replace(
                "2026-11-23T09:00:00.250000+00:00", "0001-01-01T00:00:00+01:00"
            ),
            "is not a time in UTC",
        ),
    ],
)
def test_a_file_that_is_not_a_digest_is_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(DigestMalformed, match=why):
        parse(text)


def test_a_digest_says_whether_the_schedule_wrote_it_and_signs_that() -> None:
    asked = replace(DIGEST, scheduled=False)

    assert parse(asked.to_json()) == asked
    assert b'"scheduled":false' in asked.body()
    assert asked.body() != DIGEST.body()


def test_a_first_format_digest_reads_and_signs_the_bytes_it_was_signed_over() -> None:
    fields = json.loads(DIGEST.to_json())
    del fields["scheduled"]
    fields["format"] = FORMAT_1
    signature = fields.pop("signature")
    signed_then = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")

    old = parse(json.dumps({**fields, "signature": signature}))

    assert old.body() == signed_then
    assert old.scheduled is None and parse(old.to_json()) == old


def _written(*digests: tuple[datetime, timedelta, bool | None]) -> list[Named]:
    """Digests in a row, each chained to the one before, at a time with an interval, written
    by the schedule (True), asked for (False) or in the first format (None)."""
    row: list[Named] = []
    for n, (at, every, scheduled) in enumerate(digests):
        previous = row[-1].digest.signature if row else None
        d = replace(DIGEST, at=at, every=int(every.total_seconds()), previous=previous)
        d = replace(d, scheduled=scheduled, signature=f"sig{n}")
        if scheduled is None:
            d = replace(d, format=FORMAT_1)
        row.append(Named(file_name(at), d))
    return row


def _problems(digests: list[Named]) -> list[str]:
    return check_digests(digests, DIGEST.key, lambda d: True)[1]


def test_a_digest_asked_for_under_a_shorter_interval_makes_no_gap_in_a_daily_schedule() -> None:
    daily = 24 * HOUR
    digests = _written((AT, daily, True), (AT + 6 * HOUR, HOUR, False), (AT + daily, daily, True))

    assert _problems(digests) == []


def test_a_schedule_that_stops_is_a_gap_though_a_digest_asked_for_states_a_longer_one() -> None:
    digests = _written(
        (AT, HOUR, True), (AT + HOUR / 2, 24 * HOUR, False), (AT + 6 * HOUR, HOUR, True)
    )

    assert _problems(digests) == [
        "A digest is missing between 2026-11-23 09:00:00 UTC and 2026-11-23 15:00:00 UTC."
    ]


def test_first_format_digests_are_judged_by_the_larger_interval_of_two_in_a_row() -> None:
    daily = 24 * HOUR
    mixed = _written((AT, daily, None), (AT + 6 * HOUR, HOUR, None), (AT + daily, daily, None))
    hourly = _written((AT, HOUR, None), (AT + HOUR, HOUR, None), (AT + 3 * HOUR, HOUR, None))

    assert _problems(mixed) == []
    assert _problems(hourly) == [
        "A digest is missing between 2026-11-23 10:00:00 UTC and 2026-11-23 12:00:00 UTC."
    ]
