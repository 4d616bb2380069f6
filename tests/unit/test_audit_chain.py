"""The audit trail's hash chain: intact, it verifies; tampered with, it names where."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest

from tests.unit.builders import EMMA, Desk, emergency_details, standard_details
from workflows.audit import GENESIS, AuditEntry, ChainBreak, ChainedEntry, chain, verify
from workflows.model import Outcome

Trail = list[ChainedEntry]


@pytest.fixture
def trail(desk: Desk) -> Trail:
    """A real trail: three changes taken through their stages by the use cases."""
    desk.record_outcome(desk.deploying())
    desk.record_outcome(desk.start_deployment(desk.request(standard_details())), Outcome.FAILED)
    desk.cancel(desk.approve(desk.request(emergency_details()), by=EMMA))
    assert len(desk.uow.audit.events) > 20
    return list(desk.uow.audit.events)


def head(events: Trail) -> tuple[int, str]:
    return events[-1].seq, events[-1].hash


def rechain(events: Trail) -> Trail:
    """What a careful forger does after tampering: recompute every hash from the start."""
    out: Trail = []
    for seq, event in enumerate(events, start=1):
        out.append(chain(seq, out[-1].hash if out else GENESIS, event.entry))
    return out


def test_an_intact_trail_verifies(trail: Trail) -> None:
    assert verify(trail, head(trail)) == (len(trail), None)


def test_the_trail_starts_from_the_genesis_hash_and_links_each_event_to_the_last(
    trail: Trail,
) -> None:
    assert trail[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in pairwise(trail))
    assert [e.seq for e in trail] == list(range(1, len(trail) + 1))


def test_an_empty_trail_verifies() -> None:
    assert verify([]) == (0, None)


@pytest.mark.parametrize(
    "edit",
    [
        {"actor": "UMALLORY"},
        {"action": "cancelled"},
        {"ref": "CHG-0099"},
        {"from_stage": "request"},
        {"to_stage": "deploy"},
        {"at": datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC)},
        {"details": {"reason": "Rewritten."}},
    ],
    ids=lambda edit: next(iter(edit)),
)
def test_an_edited_event_is_caught_at_that_event(edit: dict[str, object], trail: Trail) -> None:
    tampered = list(trail)
    tampered[4] = replace(trail[4], entry=replace(trail[4].entry, **edit))  # type: ignore[arg-type]
    assert tampered[4].entry != trail[4].entry
    assert verify(tampered, head(trail)) == (
        5,
        ChainBreak(5, "its content was changed after it was written"),
    )


def test_a_deleted_event_is_caught_where_it_is_missing(trail: Trail) -> None:
    tampered = trail[:4] + trail[5:]
    checked, broken = verify(tampered, head(trail))
    assert broken == ChainBreak(
        6, "expected event #5 here: events were deleted, inserted or reordered"
    )
    assert checked == 5


def test_an_inserted_event_is_caught(trail: Trail) -> None:
    forged = AuditEntry(trail[3].entry.at, "UMALLORY", "approved", "CHG-0001", "approve", "deploy")
    tampered = [*trail[:4], chain(5, trail[3].hash, forged), *trail[4:]]
    _, broken = verify(tampered, head(trail))
    assert broken == ChainBreak(
        5, "expected event #6 here: events were deleted, inserted or reordered"
    )


def test_an_event_inserted_with_a_made_up_number_is_caught_at_that_number(
    trail: Trail,
) -> None:
    forged = chain(99, trail[3].hash, trail[3].entry)
    _, broken = verify([*trail[:4], forged, *trail[4:]], head(trail))
    assert broken is not None and broken.seq == 99
    assert "expected event #5 here" in broken.problem


def test_two_reordered_events_are_caught_at_the_first_out_of_place(trail: Trail) -> None:
    tampered = list(trail)
    tampered[3], tampered[4] = trail[4], trail[3]
    _, broken = verify(tampered, head(trail))
    assert broken == ChainBreak(
        5, "expected event #4 here: events were deleted, inserted or reordered"
    )


def test_reordered_events_given_new_numbers_no_longer_link_up(trail: Trail) -> None:
    tampered = list(trail)
    tampered[3] = replace(trail[4], seq=4)
    tampered[4] = replace(trail[3], seq=5)
    _, broken = verify(tampered, head(trail))
    assert broken == ChainBreak(4, "it does not follow the event before it")


def test_a_truncated_tail_is_caught_by_the_remembered_head(trail: Trail) -> None:
    last = len(trail)
    checked, broken = verify(trail[:-2], head(trail))
    assert checked == last - 2
    assert broken == ChainBreak(
        last - 1, f"the trail ends at #{last - 2} but #{last} was written: events were removed"
    )


def test_without_the_head_a_truncated_tail_looks_intact(trail: Trail) -> None:
    assert verify(trail[:-2]) == (len(trail) - 2, None)


def test_a_trail_rehashed_after_an_edit_is_caught_by_the_remembered_head(
    trail: Trail,
) -> None:
    edited = list(trail)
    edited[4] = replace(trail[4], entry=replace(trail[4].entry, actor="UMALLORY"))
    forged = rechain(edited)
    assert verify(forged) == (len(trail), None)
    last = len(trail)
    assert verify(forged, head(trail)) == (
        last,
        ChainBreak(last, f"#{last} is not the event that was written: the trail was rewritten"),
    )


def test_events_added_after_the_remembered_head_are_caught(trail: Trail) -> None:
    last = len(trail)
    extra = chain(last + 1, trail[-1].hash, trail[-1].entry)
    _, broken = verify([*trail, extra], head(trail))
    assert broken == ChainBreak(
        last + 1, f"#{last} was the last event written: events were added after it"
    )


def test_a_break_reads_as_a_sentence() -> None:
    assert str(ChainBreak(7, "it does not follow the event before it")) == (
        "audit event #7: it does not follow the event before it"
    )


def test_the_same_moment_hashes_the_same_in_any_time_zone() -> None:
    moment = datetime(2026, 11, 23, 9, 0, 0, 1, tzinfo=UTC)
    paris = moment.astimezone(timezone(timedelta(hours=1)))
    naive = moment.replace(tzinfo=None)  # as some databases hand it back: UTC without a zone

    def hashed(at: datetime) -> str:
        return chain(1, GENESIS, AuditEntry(at, "UALICE", "requested", "CHG-0001", "r", "r")).hash

    assert hashed(moment) == hashed(paris) == hashed(naive)
    assert hashed(moment) != hashed(moment + timedelta(microseconds=1))


def test_the_order_of_details_does_not_change_the_hash() -> None:
    def hashed(details: dict[str, object]) -> str:
        entry = AuditEntry(
            datetime(2026, 1, 1, tzinfo=UTC), "U1", "a", "CHG-0001", "x", "y", details
        )
        return chain(1, GENESIS, entry).hash

    assert hashed({"a": 1, "b": [2]}) == hashed({"b": [2], "a": 1})
