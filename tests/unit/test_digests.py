"""What a digest says and when the next is due: pure rules, no keys, files or database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows.digests import (
    Digest,
    DigestMalformed,
    allowed_gap,
    file_name,
    is_digest_name,
    next_due,
    parse,
)

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
